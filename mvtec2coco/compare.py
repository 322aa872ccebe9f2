"""One table and one figure over the runs of every family: which approach finds this product's
defects best. Each row comes from a ``metrics.json`` of ``evaluate``; a metric a run lacks is a
dash, never a zero."""

from __future__ import annotations

import json
from pathlib import Path

from .errors import OptionError

COLUMNS = ("run", "family", "model", "config", "train images", "image AUROC", "image AP", "balanced acc.", "pixel AUROC",
           "pixel AUPRO", "Dice", "box AP50", "mask AP", "train s", "predict s", "parameters")
BARS = (("image AUROC", ("image", "auroc")), ("pixel AUPRO", ("pixel", "aupro")),
        ("box AP50", ("instance", "bbox", "ap50")), ("mask AP", ("instance", "segm", "ap")))


def load(path: Path) -> dict:
    """A ``metrics.json``, or the folder holding one (a predictions folder)."""
    path = Path(path)
    file = path / "metrics.json" if path.is_dir() else path
    if not file.is_file():
        raise OptionError("no metrics.json here", path, "run `mvtec2coco evaluate PREDICTIONS --gt OUT` first")
    try:
        data = json.loads(file.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise OptionError(f"metrics.json cannot be read ({type(exc).__name__})", file) from exc
    if not isinstance(data, dict) or not isinstance(data.get("image"), dict) or "family" not in data:
        raise OptionError("not a metrics.json of `mvtec2coco evaluate`", file)
    for _, keys in (*BARS, (None, ("image", "ap")), (None, ("image", "balanced_accuracy")), (None, ("pixel", "auroc")),
                    (None, ("pixel", "dice"))):
        value = get(data, *keys)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise OptionError(f"{'.'.join(keys)} is {value!r}, not a number: not a metrics.json of `evaluate`", file)
    data["_name"] = file.parent.name
    data["_file"] = str(file.resolve())
    return data


def get(m: dict, *keys: str):
    for k in keys:
        if not isinstance(m, dict) or m.get(k) is None:
            return None
        m = m[k]
    return m


def _num(v, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return f"{v:.{digits}f}"


def row(m: dict) -> list[str]:
    meta = m.get("meta", {})
    return [m["_name"], str(m.get("family") or "-"), str(meta.get("model") or "-"), str(meta.get("config") or "-"),
            _num(meta.get("train_images")),
            _num(get(m, "image", "auroc")), _num(get(m, "image", "ap")), _num(get(m, "image", "balanced_accuracy")),
            _num(get(m, "pixel", "auroc")), _num(get(m, "pixel", "aupro")), _num(get(m, "pixel", "dice")),
            _num(get(m, "instance", "bbox", "ap50")), _num(get(m, "instance", "segm", "ap")),
            _num(meta.get("train_seconds"), 1), _num(meta.get("predict_seconds"), 1), _num(meta.get("parameters"))]


def markdown(runs: list[dict]) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "| " + " | ".join("---" for _ in COLUMNS) + " |"]
    lines += ["| " + " | ".join(row(m)) + " |" for m in runs]
    return "\n".join(lines) + "\n"


def plot(runs: list[dict], path: Path) -> Path:
    """Grouped bars of the four headline metrics (a missing one has no bar and a dash), and the
    ROC curves of the image scores on one axis."""
    import numpy as np

    from .runtime.plotting import pyplot, save

    plt = pyplot()
    fig, (bars, roc) = plt.subplots(1, 2, figsize=(13, 4.8), gridspec_kw={"width_ratios": [1.6, 1]})
    width = 0.8 / max(1, len(runs))
    x = np.arange(len(BARS))
    for k, m in enumerate(runs):
        values = [get(m, *keys) for _, keys in BARS]
        offsets = x - 0.4 + width * (k + 0.5)
        drawn = bars.bar([o for o, v in zip(offsets, values) if v is not None], [v for v in values if v is not None],
                         width, label=m["_name"])
        colour = drawn.patches[0].get_facecolor() if drawn.patches else "grey"
        for o, v in zip(offsets, values):  # every value written, so that a 0 is seen and a dash is not a 0
            bars.text(o, (v or 0) + 0.01, "-" if v is None else f"{v:.2f}", ha="center", va="bottom", fontsize=7,
                      color=colour)
        curve = get(m, "image", "roc")
        if curve:
            roc.plot(curve["fpr"], curve["tpr"], label=f"{m['_name']} ({_num(get(m, 'image', 'auroc'))})")
    bars.set_xticks(x, [name for name, _ in BARS])
    bars.set_ylim(0, 1.05)
    bars.set_title("which approach finds the defects (a dash: the approach cannot give it)")
    bars.legend(fontsize=8)
    roc.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
    roc.set_xlabel("false positive rate (good images flagged)")
    roc.set_ylabel("true positive rate (defective images found)")
    roc.set_title("image-level ROC")
    roc.legend(fontsize=8, loc="lower right")
    return save(fig, path)


__all__ = ["COLUMNS", "load", "markdown", "plot", "row"]
