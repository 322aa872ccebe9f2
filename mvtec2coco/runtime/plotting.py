"""Headless matplotlib for the PNGs we write (summary bars, confusion matrices, training curves)."""

from __future__ import annotations

from pathlib import Path


def pyplot():
    """``matplotlib.pyplot`` on the Agg backend (no display needed), imported only when plotting."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save(fig, path: Path, dpi: int = 100) -> Path:
    """Lay out, write ``path`` atomically (creating its folder) and free the figure."""
    import io

    import matplotlib.pyplot as plt

    from .staging import write_file

    fig.tight_layout()
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return write_file(Path(path), buffer.getvalue())
