"""Shared fixtures: generated datasets in every layout, offline ultralytics settings."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("YOLO_OFFLINE", "1")
os.environ.setdefault("YOLO_CONFIG_DIR", str(ROOT / ".yolo_config"))
os.environ.setdefault("YOLO_AUTOINSTALL", "False")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ["MVTEC2COCO_OFFLINE"] = "1"  # tests never download weights; the fetch tests serve them on loopback
os.environ.setdefault("MVTEC2COCO_CACHE", tempfile.mkdtemp(prefix="m2c_cache_"))

GUARD = Path(__file__).resolve().parent / "offline_guard"
SOCKET_LOG = ROOT / ".pytest_socket_attempts.log"
os.environ["PYTHONPATH"] = os.pathsep.join([str(GUARD), *filter(None, [os.environ.get("PYTHONPATH")])])
os.environ["MVTEC2COCO_SOCKET_LOG"] = str(SOCKET_LOG)

from mvtec2coco.synth import generate  # noqa: E402

CHECKOUT_RUNS = ROOT / "runs"  # the CLI's default run folders: tests must write to tmp_path instead
_RUNS_BEFORE: list[bool] = []


def pytest_sessionstart(session):
    SOCKET_LOG.unlink(missing_ok=True)
    _RUNS_BEFORE.append(CHECKOUT_RUNS.exists())


def pytest_sessionfinish(session, exitstatus):
    """Fail the run if any test process tried the network, even where the error was swallowed,
    or if a test left run folders in the checkout."""
    if SOCKET_LOG.is_file() and SOCKET_LOG.read_text().strip():
        print(f"\nnetwork access attempted during the tests:\n{SOCKET_LOG.read_text()}")
        session.exitstatus = 1
    if CHECKOUT_RUNS.exists() and not _RUNS_BEFORE[0]:
        print(f"\na test wrote into the checkout: {CHECKOUT_RUNS} (pass --out or project= a tmp_path)")
        session.exitstatus = 1


@pytest.fixture(scope="session")
def tiny_factory(tmp_path_factory):
    """Generate (once per session) the tiny preset in a given layout; returns its folder."""
    made: dict[str, Path] = {}

    def make(layout: str = "mvtec") -> Path:
        if layout not in made:
            made[layout] = generate(tmp_path_factory.mktemp(f"tiny_{layout}") / "data", "tiny", layout, seed=0)
        return made[layout]

    return make


@pytest.fixture(scope="session")
def tiny_mvtec(tiny_factory) -> Path:
    return tiny_factory("mvtec")


@pytest.fixture(scope="session")
def bottle(tmp_path_factory) -> Path:
    """The bottle preset (292 images, 900x900), generated once per session."""
    return generate(tmp_path_factory.mktemp("bottle") / "bottle", "bottle", "mvtec", seed=0)


@pytest.fixture()
def tiny_copy(tiny_mvtec, tmp_path) -> Path:
    """A private copy of the tiny MVTec dataset that a test may damage."""
    import shutil

    dst = tmp_path / "data"
    shutil.copytree(tiny_mvtec, dst)
    return dst


def pytest_collection_modifyitems(session, config, items):
    """The longest tests first (training runs, the demo scripts, then the other slow ones): on
    several workers a run ends when its last test does, and a long one started last leaves the
    other workers idle; the short ones fill the gaps at the end."""
    first = ("tests/tools/", "tests/models/")
    items.sort(key=lambda item: 0 if item.nodeid.startswith(first) else 1 if item.get_closest_marker("slow") else 2)
