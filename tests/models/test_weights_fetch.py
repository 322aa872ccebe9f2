"""Weights fetched on first use, through a loopback HTTP server standing in for a mirror.

Nothing here leaves 127.0.0.1: the server is a thread of this process and the offline guard
(tests/offline_guard) still refuses any other address.
"""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import threading
from pathlib import Path

import pytest
import torch

from mvtec2coco.errors import WeightsError
from mvtec2coco.models.common import registry
from mvtec2coco.models.common.fetch import WeightsNotFoundError, cached_path, ensure
from mvtec2coco.models.common.registry import WeightsEntry

from ..helpers import run_cli


class Mirror:
    """A loopback server for one folder; ``requests`` lists the paths asked for; ``cut`` makes it
    close the connection halfway through the named file."""

    def __init__(self, folder: Path):
        self.folder, self.requests, self.cut = folder, [], set()
        mirror = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server's name
                mirror.requests.append(self.path)
                path = mirror.folder / self.path.lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if path.name in mirror.cut:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(2)
                    return
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def mirror(tmp_path, monkeypatch):
    served = tmp_path / "served"
    served.mkdir()
    server = Mirror(served)
    monkeypatch.delenv("MVTEC2COCO_OFFLINE", raising=False)
    monkeypatch.setenv("MVTEC2COCO_WEIGHTS_MIRROR", server.url)
    monkeypatch.setenv("MVTEC2COCO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setattr(registry, "_EXTRA", {})
    yield server
    server.close()


def _serve(server: Mirror, name: str, data: bytes, hashed: str = "full", **extra) -> WeightsEntry:
    """Put ``data`` on the mirror and register it (full hash, a file-name prefix, or none)."""
    (server.folder / name).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    entry = WeightsEntry(extra.pop("entry_name", name), name, f"https://publisher.invalid/{name}", None,
                         digest if hashed == "full" else None, digest[:8] if hashed == "prefix" else None, **extra)
    registry.register(entry)
    return entry


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def test_download_verifies_caches_and_is_not_fetched_twice(mirror, tmp_path):
    entry = _serve(mirror, "small.bin", os.urandom(50_000))
    path = ensure(entry.name, progress=False)
    assert path == tmp_path / "cache" / "weights" / "small.bin"
    assert path.read_bytes() == (mirror.folder / "small.bin").read_bytes()
    assert ensure(entry.name, progress=False) == path
    assert mirror.requests == ["/small.bin"]  # the cache is reused without a second request
    assert json.loads((path.parent / "small.bin.sha256").read_text())["sha256"] == entry.sha256


def test_a_hash_mismatch_is_refused_and_nothing_is_left(mirror, tmp_path):
    entry = _serve(mirror, "bad.bin", b"x" * 1000)
    registry.register(WeightsEntry(entry.name, entry.file, entry.url, None, "0" * 64))
    with pytest.raises(WeightsError, match="fails its hash check") as err:
        ensure(entry.name, progress=False)
    assert mirror.url in str(err.value)
    assert _leftovers(tmp_path / "cache") == []
    registry.register(WeightsEntry("prefixed", "bad.bin", entry.url, None, None, "deadbeef"))
    with pytest.raises(WeightsError, match="hash"):  # torch's own prefix check
        ensure("prefixed", progress=False)
    assert _leftovers(tmp_path / "cache") == []


def test_http_404_and_a_server_that_is_gone_name_the_url(mirror, tmp_path, monkeypatch):
    registry.register(WeightsEntry("missing", "missing.bin", "https://publisher.invalid/missing.bin", None))
    with pytest.raises(WeightsError, match="HTTP 404") as err:
        ensure("missing", progress=False)
    assert f"{mirror.url}/missing.bin" in str(err.value)
    _serve(mirror, "gone.bin", b"y" * 100)
    url = mirror.url
    mirror.close()
    with pytest.raises(WeightsError, match="download of gone.bin failed") as err:
        ensure("gone.bin", progress=False)
    assert url in str(err.value)
    assert _leftovers(tmp_path / "cache") == []


def test_an_interrupted_transfer_leaves_nothing_and_a_restart_succeeds(mirror, tmp_path):
    entry = _serve(mirror, "big.bin", os.urandom(400_000))
    mirror.cut.add("big.bin")
    with pytest.raises(WeightsError):
        ensure(entry.name, progress=False)
    assert _leftovers(tmp_path / "cache") == []  # no partial file where a loader could find it
    mirror.cut.clear()
    assert ensure(entry.name, progress=False).read_bytes() == (mirror.folder / "big.bin").read_bytes()


def test_offline_refuses_without_a_request(mirror, monkeypatch):
    entry = _serve(mirror, "off.bin", b"z" * 10)
    monkeypatch.setenv("MVTEC2COCO_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError, match="downloads are off") as err:
        ensure(entry.name, progress=False)
    assert "https://publisher.invalid/off.bin" in str(err.value) and str(cached_path(entry).parent) in str(err.value)
    assert mirror.requests == []


def test_unpublished_hash_is_recorded_and_corruption_refetched_by_verify(mirror, tmp_path):
    data = os.urandom(20_000)
    entry = _serve(mirror, "nohash.bin", data, hashed="none")
    path = ensure(entry.name, progress=False)
    recorded = json.loads((path.parent / "nohash.bin.sha256").read_text())["sha256"]
    assert recorded == hashlib.sha256(data).hexdigest()
    registry_file = tmp_path / "extra.json"
    registry_file.write_text(json.dumps([{"name": "nohash.bin", "file": "nohash.bin", "url": "https://publisher.invalid/x",
                                          "size_mb": None}]))
    env = {"MVTEC2COCO_WEIGHTS_REGISTRY": str(registry_file)}
    path.write_bytes(b"corrupt" + data[7:])  # same size, other bytes
    os.utime(path, ns=(1, 1))
    result = _cli(env, "weights", "verify", "nohash.bin")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "fetched again" in result.stdout and path.read_bytes() == data
    assert mirror.requests == ["/nohash.bin", "/nohash.bin"]


def _cli(env: dict, *args):
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        return run_cli(*args)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def test_classifier_and_patchcore_backbones_load_a_fetched_file(mirror):
    from torchvision.models import resnet18

    from mvtec2coco.models.classifier.network import ModelConfig, build_model
    from mvtec2coco.models.common.weights import load_state_dict

    reference = resnet18(weights=None)
    buffer = mirror.folder / "tmp.pth"
    torch.save(reference.state_dict(), buffer)
    _serve(mirror, "resnet18-test.pth", buffer.read_bytes(), entry_name="resnet18-test")
    model = build_model(ModelConfig(arch="resnet18", weights="resnet18-test"), 3)
    conv = model.backbone.state_dict()
    assert any(torch.equal(v, reference.state_dict()["conv1.weight"]) for k, v in conv.items() if "conv1" in k)
    assert torch.equal(load_state_dict("resnet18-test", "resnet18")["layer1.0.conv1.weight"],
                       reference.state_dict()["layer1.0.conv1.weight"])


def test_imagenet_means_torchvision_s_file_in_torch_home(mirror, tmp_path):
    from torchvision.models import resnet18

    from mvtec2coco.models.common.weights import load_state_dict

    reference = resnet18(weights=None).state_dict()
    torch.save(reference, tmp_path / "r.pth")
    data = (tmp_path / "r.pth").read_bytes()
    real = registry.lookup("resnet18")
    (mirror.folder / real.file).write_bytes(data)
    registry.register(WeightsEntry("resnet18", real.file, real.url, None, None, hashlib.sha256(data).hexdigest()[:8],
                                   cache="torch"))  # the real file name, this file's own prefix
    state = load_state_dict("imagenet", "resnet18")
    assert (tmp_path / "torch" / "hub" / "checkpoints" / real.file).is_file()
    assert torch.equal(state["fc.weight"], reference["fc.weight"])


def test_sam_checkpoint_by_name(mirror, tmp_path):
    from mvtec2coco.models.sam.network import build_sam

    reference = build_sam("tiny", None, seed=3)
    torch.save(reference.state_dict(), tmp_path / "s.pth")
    _serve(mirror, "sam_tiny_test.pth", (tmp_path / "s.pth").read_bytes(), hashed="prefix", entry_name="sam_tiny_test")
    sam = build_sam("tiny", "sam_tiny_test", seed=0)
    for a, b in zip(sam.state_dict().values(), reference.state_dict().values()):
        assert torch.equal(a, b)


def test_yolo_world_detector_and_clip_names_are_fetched(mirror, tmp_path, monkeypatch):
    from ultralytics import YOLO

    from mvtec2coco.models.yolo_world import text_embeddings
    from mvtec2coco.models.yolo_world.train import resolve_model

    small = tmp_path / "small.pt"
    YOLO("yolov8n.yaml").save(str(small))  # a real ultralytics checkpoint, random weights, served by the name
    data = small.read_bytes()
    _serve(mirror, "yolov8s-worldv2.pt", data, hashed="none", entry_name="yolov8s-worldv2")
    path = Path(resolve_model("yolov8s-worldv2.pt"))
    assert path.read_bytes() == data and path.parent == tmp_path / "cache" / "weights"
    assert YOLO(str(path)).model is not None  # ultralytics loads what was fetched
    with pytest.raises(Exception, match="not found"):
        resolve_model(str(tmp_path / "elsewhere" / "yolov8s-worldv2.pt"))  # a path is never downloaded
    _serve(mirror, "ViT-B-32.pt", b"clip" * 100, entry_name="clip-vit-b-32")
    loaded = []
    monkeypatch.setattr(text_embeddings.ClipTextEncoder, "_load",
                        staticmethod(lambda p: loaded.append(p) or torch.nn.Linear(1, 1)))
    monkeypatch.setattr("open_clip.get_tokenizer", lambda name: None)
    text_embeddings.ClipTextEncoder("openai")
    assert loaded == [tmp_path / "cache" / "weights" / "ViT-B-32.pt"]


def test_cli_offline_with_an_empty_cache_stops_with_where_to_get_it(tmp_path, tiny_mvtec):
    env = {"TORCH_HOME": str(tmp_path / "t"), "MVTEC2COCO_CACHE": str(tmp_path / "c")}
    result = _cli(env, "--offline", "weights", "fetch", "resnet18", "sam_vit_b")
    assert result.returncode == 2
    assert "resnet18-f37072fd.pth" in result.stderr and "https://download.pytorch.org/models/" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    result = _cli(env, "--offline", "patchcore", "train", "--data", tiny_mvtec, "--category", "bottle",
                  "--set", "model.backbone=resnet18", "--out", tmp_path / "run")  # weights: imagenet, by default
    assert result.returncode == 2 and "downloads are off" in result.stderr, result.stderr
    assert "resnet18-f37072fd.pth" in result.stderr and not (tmp_path / "run").exists()
