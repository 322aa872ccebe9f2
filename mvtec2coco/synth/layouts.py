"""Where each layout puts a generated sample: a plan of jobs (image path, mask paths, mask style)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .presets import CategorySpec

SYNTH_LAYOUTS = ("mvtec", "mvtec2", "loco", "mvtec3d", "visa", "folder")


@dataclass(frozen=True)
class Job:
    """Render sample (category, split, label, index) and write it to ``image`` and ``masks``.

    ``mask_style``: ``binary`` (0/255), ``zero`` (all-zero mask of a good image), ``loco``
    (regions spread over several files with values other than 255), ``classid`` (VisA: value = id).
    """

    spec: CategorySpec
    split: str
    label: str
    index: int
    image: str
    masks: tuple[str, ...] = ()
    mask_style: str = "binary"
    class_id: int = 1


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


def plan_loco(specs: tuple[CategorySpec, ...]) -> Plan:
    plan = Plan()
    kinds = ("logical_anomalies", "structural_anomalies")
    for spec in specs:
        c, counters = spec.name, {k: 0 for k in kinds}
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
                plan.jobs.append(Job(spec, split, label, i, f"{c}/test/{kind}/{k:03d}.png", masks, "loco"))
    return plan


def plan_mvtec3d(specs: tuple[CategorySpec, ...]) -> Plan:
    plan = Plan()
    for spec in specs:
        c = spec.name
        for split, label, i in _items(spec):
            sub, idx = _train_or_validation(spec, i) if split == "train" else (split, i)
            folder = f"{c}/{sub}/{label}"
            style = "zero" if label == "good" else "binary"
            masks = (f"{folder}/gt/{idx:03d}.png",) if sub == "test" else ()
            plan.jobs.append(Job(spec, split, label, i, f"{folder}/rgb/{idx:03d}.png", masks, style))
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


PLANNERS = {"mvtec": plan_mvtec, "mvtec2": plan_mvtec2, "loco": plan_loco, "mvtec3d": plan_mvtec3d,
            "visa": plan_visa, "folder": plan_folder}
