"""Where each layout puts a generated sample: a plan of jobs (image path, mask paths, mask style)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .presets import CategorySpec

SYNTH_LAYOUTS = ("mvtec", "mvtec2", "loco", "mvtec3d", "visa", "realiad", "btad", "kolektor", "ksdd2", "dagm", "mpdd",
                 "eyecandies", "folder")


@dataclass(frozen=True)
class Job:
    """Render sample (category, split, label, index) and write it to ``image`` and ``masks``.

    ``mask_style``: ``binary`` (0/255), ``zero`` (all-zero mask of a good image), ``loco``
    (regions spread over two overlapping files, each filled with its defect's ``values`` entry),
    ``classid`` (VisA: value = id), ``value`` (MVTec 3D-AD: each region holds its type's value;
    a ``combined`` image has one defect of each of ``parts``, with ``values`` in that order).
    """

    spec: CategorySpec
    split: str
    label: str
    index: int
    image: str
    masks: tuple[str, ...] = ()
    mask_style: str = "binary"
    class_id: int = 1
    parts: tuple[str, ...] = ()
    values: tuple[int, ...] = ()


@dataclass
class Plan:
    jobs: list[Job] = field(default_factory=list)
    texts: dict[str, str] = field(default_factory=dict)  # relpath -> file content


def _validation_count(spec: CategorySpec) -> int:
    return max(1, spec.train_good // 10)


def _train_or_validation(spec: CategorySpec, index: int) -> tuple[str, int]:
    """Layouts with a validation split take the last tenth of the train-good images for it."""
    first_val = spec.train_good - _validation_count(spec)
    return ("validation", index - first_val) if index >= first_val else ("train", index)


def _items(spec: CategorySpec):
    """(split, label, index) for every sample of the spec, train first, in a fixed order."""
    for i in range(spec.train_good):
        yield "train", "good", i
    for label in sorted(spec.test):
        for i in range(spec.test[label]):
            yield "test", label, i


def plan_mvtec(specs: tuple[CategorySpec, ...]) -> Plan:
    plan = Plan()
    for spec in specs:
        c = spec.name
        for split, label, i in _items(spec):
            masks = (f"{c}/ground_truth/{label}/{i:03d}_mask.png",) if label != "good" else ()
            plan.jobs.append(Job(spec, split, label, i, f"{c}/{split}/{label}/{i:03d}.png", masks))
    return plan


def plan_mvtec2(specs: tuple[CategorySpec, ...]) -> Plan:
    plan = Plan()
    for spec in specs:
        c, bad = spec.name, 0
        for split, label, i in _items(spec):
            if split == "train":
                sub, idx = _train_or_validation(spec, i)
                plan.jobs.append(Job(spec, split, label, i, f"{c}/{sub}/good/{idx:03d}_regular.png"))
            elif label == "good":
                plan.jobs.append(Job(spec, split, label, i, f"{c}/test_public/good/{i:03d}_regular.png"))
            else:
                stem = f"{bad:03d}_regular"
                plan.jobs.append(Job(spec, split, label, i, f"{c}/test_public/bad/{stem}.png",
                                     (f"{c}/test_public/ground_truth/bad/{stem}_mask.png",)))
                bad += 1
        for k in range(max(2, sum(spec.test.values()) // 10)):
            label = spec.defect_types[k % len(spec.defect_types)] if k % 2 else "good"
            plan.jobs.append(Job(spec, "private", label, k, f"{c}/test_private/{k:03d}_regular.png"))
    return plan


def value_of(spec: CategorySpec) -> dict[str, int]:
    """Mask value per defect type as MVTec 3D-AD numbers them: the types other than ``combined``
    in name order from 255 down (cookie: contamination 255, crack 254, hole 253)."""
    return {t: 255 - k for k, t in enumerate(t for t in spec.defect_types if t != "combined")}


def class_ids_text(spec: CategorySpec) -> str:
    """The category's ``class_ids.json`` (MVTec 3D-AD: mask value -> defect type, 0 good)."""
    import json

    return json.dumps({**{str(v): t for t, v in value_of(spec).items()}, "0": "good"}, indent=4) + "\n"


def loco_values(spec: CategorySpec) -> dict[str, int]:
    """Pixel value per defect of a generated LOCO category (not only 255, as in LOCO)."""
    return {t: 255 - 9 * k for k, t in enumerate(spec.defect_types)}


def defects_config_text(spec: CategorySpec) -> str:
    """The category's ``defects_config.json`` (MVTec LOCO's schema)."""
    import json

    entries = [{"defect_name": t, "pixel_value": v, "saturation_threshold": 1.0, "relative_saturation": True}
               for t, v in loco_values(spec).items()]
    return json.dumps(entries, indent=4) + "\n"


def plan_loco(specs: tuple[CategorySpec, ...]) -> Plan:
    plan = Plan()
    kinds = ("logical_anomalies", "structural_anomalies")
    for spec in specs:
        c, counters = spec.name, {k: 0 for k in kinds}
        plan.texts[f"{c}/defects_config.json"] = defects_config_text(spec)
        values = loco_values(spec)
        types = spec.defect_types
        for split, label, i in _items(spec):
            if split == "train":
                sub, idx = _train_or_validation(spec, i)
                plan.jobs.append(Job(spec, split, label, i, f"{c}/{sub}/good/{idx:03d}.png"))
            elif label == "good":
                plan.jobs.append(Job(spec, split, label, i, f"{c}/test/good/{i:03d}.png"))
            else:
                kind = kinds[spec.defect_types.index(label) % 2]
                k = counters[kind]
                counters[kind] += 1
                masks = (f"{c}/ground_truth/{kind}/{k:03d}/000.png", f"{c}/ground_truth/{kind}/{k:03d}/001.png")
                other = types[(types.index(label) + 1) % len(types)]
                plan.jobs.append(Job(spec, split, label, i, f"{c}/test/{kind}/{k:03d}.png", masks, "loco",
                                     values=(values[label], values[other])))
    return plan


def plan_mvtec3d(specs: tuple[CategorySpec, ...]) -> Plan:
    plan = Plan()
    for spec in specs:
        c = spec.name
        plan.texts[f"{c}/class_ids.json"] = class_ids_text(spec)
        values = value_of(spec)
        for split, label, i in _items(spec):
            sub, idx = _train_or_validation(spec, i) if split == "train" else (split, i)
            folder = f"{c}/{sub}/{label}"
            masks = (f"{folder}/gt/{idx:03d}.png",) if sub == "test" else ()
            image = f"{folder}/rgb/{idx:03d}.png"
            if label == "good":
                plan.jobs.append(Job(spec, split, label, i, image, masks, "zero"))
            elif label == "combined":
                parts = tuple(values)
                plan.jobs.append(Job(spec, split, label, i, image, masks, "value", parts=parts,
                                     values=tuple(values[p] for p in parts)))
            else:
                plan.jobs.append(Job(spec, split, label, i, image, masks, "value", values=(values[label],)))
            plan.texts[f"{folder}/xyz/{idx:03d}.tiff"] = "point cloud placeholder (ignored by readers)\n"
    return plan


def plan_visa(specs: tuple[CategorySpec, ...]) -> Plan:
    plan = Plan()
    split_rows = ["object,split,label,image,mask"]
    for spec in specs:
        c, normal, anomaly = spec.name, 0, 0
        anno_rows = ["image,label,mask"]
        for split, label, i in _items(spec):
            if label == "good":
                image = f"{c}/Data/Images/Normal/{normal:04d}.JPG"
                normal += 1
                plan.jobs.append(Job(spec, split, label, i, image))
                split_rows.append(f"{c},{split},normal,{image},")
                anno_rows.append(f"{image},normal,")
            else:
                image, mask = f"{c}/Data/Images/Anomaly/{anomaly:03d}.JPG", f"{c}/Data/Masks/Anomaly/{anomaly:03d}.png"
                anomaly += 1
                class_id = spec.defect_types.index(label) + 1
                plan.jobs.append(Job(spec, split, label, i, image, (mask,), "classid", class_id))
                split_rows.append(f"{c},{split},anomaly,{image},{mask}")
                anno_rows.append(f"{image},{label.replace('_', ' ')},{mask}")
        plan.texts[f"{c}/image_anno.csv"] = "\n".join(anno_rows) + "\n"
    plan.texts["split_csv/1cls.csv"] = "\n".join(split_rows) + "\n"
    return plan


def plan_folder(specs: tuple[CategorySpec, ...]) -> Plan:
    plan = Plan()
    for spec in specs:
        c, good = spec.name, 0
        for split, label, i in _items(spec):
            if label == "good":
                plan.jobs.append(Job(spec, split, label, i, f"{c}/good/{good:03d}.png"))
                good += 1
            else:
                plan.jobs.append(Job(spec, split, label, i, f"{c}/{label}/{i:03d}.png",
                                     (f"{c}/masks/{label}/{i:03d}_mask.png",)))
    return plan


REALIAD_VIEWS = 5
TIMESTAMP = "20240101120000"


def plan_realiad(specs: tuple[CategorySpec, ...]) -> Plan:
    """Real-IAD: five camera views per part, a PNG mask beside each defect view, the JSON split;
    the last view of a defective part does not see its defect (no mask, as in the dataset)."""
    import json

    plan = Plan()
    for spec in specs:
        c = spec.name
        entries: dict[str, list[dict]] = {"train": [], "test": []}
        for part, (split, label, i) in enumerate(_items(spec), 1):
            folder = f"OK/S{part:04d}" if label == "good" else f"NG/{label}/S{part:04d}"
            status = "OK" if label == "good" else f"NG_{label}"
            for view in range(1, REALIAD_VIEWS + 1):
                stem = f"{folder}/{c}_{part:04d}_{status}_C{view}_{TIMESTAMP}"
                sees = label != "good" and view < REALIAD_VIEWS
                masks = (f"{c}/{stem}.png",) if sees else ()
                plan.jobs.append(Job(spec, split, label if sees else "good", i * REALIAD_VIEWS + view,
                                     f"{c}/{stem}.jpg", masks))
                entries[split].append({"category": c, "anomaly_class": "OK" if label == "good" else label,
                                       "image_path": f"{stem}.jpg", "mask_path": f"{stem}.png" if sees else None})
        plan.texts[f"realiad_jsons/{c}.json"] = json.dumps({"meta": {"prefix": c, "normal_class": "OK"}, **entries},
                                                           indent=1) + "\n"
    return plan


def plan_btad(specs: tuple[CategorySpec, ...]) -> Plan:
    """BTAD: products 01, 02, ...; the first product's images are BMP (as product 01's), masks PNG."""
    plan = Plan()
    for n, spec in enumerate(specs, 1):
        c, ext, ko = f"{n:02d}", ".bmp" if n == 1 else ".png", 0
        for split, label, i in _items(spec):
            if label == "good":
                plan.jobs.append(Job(spec, split, label, i, f"{c}/{split}/ok/{i:04d}{ext}"))
            else:
                plan.jobs.append(Job(spec, split, label, i, f"{c}/test/ko/{ko:04d}{ext}", (f"{c}/ground_truth/ko/{ko:04d}.png",)))
                ko += 1
    return plan


def plan_kolektor(specs: tuple[CategorySpec, ...]) -> Plan:
    """KolektorSDD: parts of four per commutator folder, each with its BMP label (all zero when good)."""
    plan = Plan()
    for spec in specs:
        c = spec.name
        for n, (split, label, i) in enumerate(_items(spec)):
            stem = f"{c}/kos{n // 4 + 1:02d}/Part{n % 4}"
            plan.jobs.append(Job(spec, split, label, i, f"{stem}.jpg", (f"{stem}_label.bmp",),
                                 "zero" if label == "good" else "binary"))
    return plan


def plan_ksdd2(specs: tuple[CategorySpec, ...]) -> Plan:
    """KSDD2: ``train|test/<id>.png`` with ``<id>_GT.png`` (all zero when good)."""
    plan = Plan()
    for spec in specs:
        c = spec.name
        for n, (split, label, i) in enumerate(_items(spec)):
            stem = f"{c}/{split}/{10000 + n}"
            plan.jobs.append(Job(spec, split, label, i, f"{stem}.png", (f"{stem}_GT.png",),
                                 "zero" if label == "good" else "binary"))
    return plan


def plan_dagm(specs: tuple[CategorySpec, ...]) -> Plan:
    """DAGM 2007: ``Train|Test/NNNN.PNG``, ``Label/NNNN_label.PNG`` and ``Label/Labels.txt``."""
    plan = Plan()
    for spec in specs:
        c = spec.name
        rows: dict[str, list[str]] = {"Train": ["1"], "Test": ["1"]}
        for n, (split, label, i) in enumerate(_items(spec)):
            folder = "Train" if split == "train" else "Test"
            name = f"{n:04d}.PNG"
            masks = (f"{c}/{folder}/Label/{n:04d}_label.PNG",) if label != "good" else ()
            plan.jobs.append(Job(spec, split, label, i, f"{c}/{folder}/{name}", masks))
            flag, mask_name = ("1", f"{n:04d}_label.PNG") if masks else ("0", "0")
            rows[folder].append(f"{len(rows[folder])}\t{flag}\t{name}\t0\t{mask_name}")
        for folder, lines in rows.items():
            plan.texts[f"{c}/{folder}/Label/Labels.txt"] = "\n".join(lines) + "\n"
    return plan


MPDD_NAMES = ("bracket_black", "bracket_brown", "bracket_white", "connector", "metal_plate", "tubes")


def plan_mpdd(specs: tuple[CategorySpec, ...]) -> Plan:
    """MPDD: MVTec AD's layout under MPDD's category names; the second category names its masks
    ``000.png`` instead of ``000_mask.png`` (both occur)."""
    from dataclasses import replace

    plan = Plan()
    for n, spec in enumerate(specs):
        spec = replace(spec, name=MPDD_NAMES[n % len(MPDD_NAMES)])
        c, suffix = spec.name, "_mask" if n % 2 == 0 else ""
        for split, label, i in _items(spec):
            masks = (f"{c}/ground_truth/{label}/{i:03d}{suffix}.png",) if label != "good" else ()
            plan.jobs.append(Job(spec, split, label, i, f"{c}/{split}/{label}/{i:03d}.png", masks))
    return plan


EYECANDIES_LIGHTS = 6


def plan_eyecandies(specs: tuple[CategorySpec, ...]) -> Plan:
    """Eyecandies: six lighting images per object, one mask and ``metadata.yaml`` (anomalous);
    ``val`` takes the last tenth of the good training objects; a few unlabeled ``test_private``."""
    plan = Plan()
    for spec in specs:
        c = spec.name
        numbers: dict[str, int] = {}
        for split, label, i in [*_items(spec), *(("private", "good", k) for k in range(2))]:
            sub = {"train": _train_or_validation(spec, i)[0].replace("validation", "val"), "test": "test_public",
                   "private": "test_private"}[split]
            n = numbers[sub] = numbers.get(sub, -1) + 1
            stem = f"{c}/{sub}/data/{n:03d}"
            for light in range(EYECANDIES_LIGHTS):
                masks = (f"{stem}_mask.png",) if light == 0 and sub != "test_private" else ()
                plan.jobs.append(Job(spec, split, label, i, f"{stem}_image_{light}.png", masks,
                                     "zero" if label == "good" else "binary"))
            if sub != "test_private":
                plan.texts[f"{stem}_metadata.yaml"] = f"anomalous: {0 if label == 'good' else 1}\n"
            plan.texts[f"{stem}_pose.txt"] = "1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n"
    return plan


PLANNERS = {"mvtec": plan_mvtec, "mvtec2": plan_mvtec2, "loco": plan_loco, "mvtec3d": plan_mvtec3d,
            "visa": plan_visa, "realiad": plan_realiad, "btad": plan_btad, "kolektor": plan_kolektor,
            "ksdd2": plan_ksdd2, "dagm": plan_dagm, "mpdd": plan_mpdd, "eyecandies": plan_eyecandies,
            "folder": plan_folder}
