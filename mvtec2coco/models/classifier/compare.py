"""Compare classifier runs: console and Markdown table (best row marked) and validation curves."""

from __future__ import annotations

import json
from pathlib import Path

from ...errors import OptionError

COLUMNS = ("run", "model", "batch", "lr", "epochs", "optimizer", "method", "val acc", "val bal acc",
           "test acc", "test bal acc", "test macro F1", "test AUROC")


def _method(cfg: dict) -> str:
    imb = cfg["imbalance"]
    parts = [imb["loss"]]
    if imb["sampler"] != "none":
        parts.append(f"{imb['sampler']} sampler")
    if cfg["model"]["weights"] != "none":
        parts.append(f"{cfg['model']['weights']} weights")
    if cfg["model"]["freeze_stages"]:
        parts.append(f"freeze {cfg['model']['freeze_stages']}")
    return ", ".join(parts)


def _pct(v) -> str:
    return "-" if v is None else f"{100 * v:.2f}%"


def load_run(run_dir: Path) -> dict:
    run_dir = Path(run_dir)
    if not (run_dir / "summary.json").is_file():
        raise OptionError("no summary.json in the run folder", run_dir, "pass folders written by `classifier train`")
    from ..common import config as configs
    from .config import ExperimentConfig

    cfg = configs.to_dict(configs.load(ExperimentConfig, run_dir / "config.yaml"))
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        curve = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line]
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise OptionError(f"the run's summary.json or metrics.jsonl cannot be read ({type(exc).__name__})",
                          run_dir) from exc
    if not isinstance(summary, dict) or not all(isinstance(c, dict) for c in curve):
        raise OptionError("the run's summary.json or metrics.jsonl is not what `classifier train` writes", run_dir)
    return {"dir": run_dir, "config": cfg, "summary": summary, "curve": curve}


def rows(runs: list[dict]) -> tuple[list[list[str]], int]:
    """Table rows and the index of the best run (highest validation balanced accuracy)."""
    table, scores = [], []
    for r in runs:
        cfg, s = r["config"], r["summary"]
        val, test = s.get("val", {}), s.get("test", {})
        scores.append(val.get("balanced_accuracy", -1))
        table.append([cfg["name"], cfg["model"]["arch"], str(cfg["train"]["batch_size"]), f"{cfg['optim']['lr']:g}",
                      str(cfg["train"]["epochs"]), cfg["optim"]["optimizer"], _method(cfg),
                      _pct(val.get("accuracy")), _pct(val.get("balanced_accuracy")), _pct(test.get("accuracy")),
                      _pct(test.get("balanced_accuracy")), _pct(test.get("macro_f1")),
                      _pct(test.get("auroc_good_vs_defect"))])
    best = max(range(len(scores)), key=lambda i: scores[i]) if scores else -1
    return table, best


def markdown(runs: list[dict]) -> str:
    table, best = rows(runs)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for i, row in enumerate(table):
        cells = [f"**{c}** (best)" if (i == best and j == 0) else c for j, c in enumerate(row)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(runs: list[dict], path: Path) -> Path:
    from ...runtime.plotting import pyplot, save

    plt = pyplot()

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.5))
    for r in runs:
        epochs = [c["epoch"] for c in r["curve"]]
        ax1.plot(epochs, [c["train_loss"] for c in r["curve"]], label=r["config"]["name"])
        ax2.plot(epochs, [c["val_balanced_accuracy"] for c in r["curve"]], label=r["config"]["name"])
    ax1.set(title="training loss", xlabel="epoch")
    ax2.set(title="validation balanced accuracy", xlabel="epoch", ylim=(0, 1.02))
    ax2.legend(fontsize=8)
    return save(fig, path)
