"""CLI behaviour: help, version, exit codes, one-line errors naming the file."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ..helpers import run_cli


def test_help_lists_every_command():
    result = run_cli("--help", check=True)
    for command in ("synth", "summary", "convert", "verify", "validate", "preview"):
        assert command in result.stdout
    for command in ("synth", "summary", "convert", "verify", "validate", "preview"):
        assert "Example: mvtec2coco" in run_cli(command, "--help", check=True).stdout


FAMILIES = ("classifier", "patchcore", "yolo-world", "sam")


def _commands():
    """(path, click command) of every command, from the app itself."""
    import typer.main

    from mvtec2coco.cli import app

    root = typer.main.get_command(app)
    found = []
    for name, command in root.commands.items():
        subs = getattr(command, "commands", None)
        found += [((name, sub), c) for sub, c in subs.items()] if subs else [((name,), command)]
    return found


def test_the_four_families_share_one_grammar():
    result = run_cli("--help", check=True)
    commands = dict(_commands())
    for family in FAMILIES:
        assert family in result.stdout
        for verb in ("train", "eval", "predict"):
            assert (family, verb) in commands, (family, verb)
    for path, command in commands.items():
        assert "Example: mvtec2coco " + " ".join(path) in (command.help or ""), path


def test_every_device_option_is_the_same_and_takes_auto():
    """One --device: no default of its own (the config's, auto), the same vocabulary everywhere."""
    from mvtec2coco.models.common.devices import pick_device, ultralytics_device

    with_device = [(path, p) for path, c in _commands() for p in c.params if p.name == "device"]
    assert len(with_device) >= 11
    for path, param in with_device:
        assert param.default is None, path
        assert "auto" in param.help and "cuda:N" in param.help, path
    import torch

    gpu = torch.cuda.is_available()
    assert pick_device("auto").type == ("cuda" if gpu else "cpu")
    assert ultralytics_device("auto") == ("0" if gpu else "cpu")


def test_version():
    assert run_cli("--version", check=True).stdout.startswith("mvtec2coco 0.")


def test_bad_path_is_one_line_exit_2(tmp_path):
    missing = tmp_path / "nowhere"
    result = run_cli("summary", missing)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and str(missing) in result.stderr
    assert "Traceback" not in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    result = run_cli("--debug", "summary", tmp_path / "nowhere")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_unknown_option_exit_2(tiny_mvtec):
    assert run_cli("summary", tiny_mvtec, "--bogus").returncode == 2


def test_broken_dataset_names_the_file(tiny_copy):
    mask = tiny_copy / "bottle/ground_truth/broken_large/000_mask.png"
    mask.unlink()
    result = run_cli("convert", tiny_copy, "--out", tiny_copy.parent / "out")
    assert result.returncode == 2
    assert "broken_large/000.png" in result.stderr and "no mask" in result.stderr
    assert not (tiny_copy.parent / "out").exists()


def test_verify_of_a_non_output_exit_2(tiny_mvtec):
    result = run_cli("verify", tiny_mvtec)
    assert result.returncode == 2 and "report.json" in result.stderr


def test_synth_then_summary(tmp_path):
    out = tmp_path / "ds"
    run_cli("synth", out, "--layout", "loco", check=True)
    result = run_cli("summary", out, "--category", "grid", check=True)
    assert "Dataset Summary for 'grid':" in result.stdout and "bottle" not in result.stdout.split("\n")[0]
    assert run_cli("synth", out).returncode == 2  # refuses to overwrite


def test_a_signal_wrapped_by_python_still_exits_as_that_signal(monkeypatch, capsys):
    """A signal that lands while a class body runs (an import of rich, say) reaches the CLI
    wrapped in a RuntimeError by ``__set_name__``: it still exits 128 + N with one line."""
    import signal

    import pytest

    from mvtec2coco import cli
    from mvtec2coco.runtime.staging import Interrupted

    def wrapped(**_kwargs):
        try:
            raise Interrupted(signal.SIGHUP)
        except Interrupted as exc:
            raise RuntimeError("Error calling __set_name__ on 'Field' instance 'fields' in 'Task'") from exc

    monkeypatch.setattr(cli, "app", wrapped)
    with pytest.raises(SystemExit) as stop:
        cli.main()
    assert stop.value.code == 128 + signal.SIGHUP
    assert capsys.readouterr().err.strip() == "error: interrupted by SIGHUP: nothing was written"

    def unrelated(**_kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(cli, "app", unrelated)
    with pytest.raises(RuntimeError, match="a bug"):
        cli.main()


@pytest.mark.parametrize("args", [("summary",), ("--help",)])
def test_a_closed_stdout_ends_quietly_with_the_code_of_sigpipe(tiny_mvtec, args):
    """`mvtec2coco summary DATA | head -0`: the reader is gone before anything is written. The
    command stops without a word on stderr and with 128 + SIGPIPE, as a pipeline's writer does."""
    import signal

    command = [sys.executable, "-m", "mvtec2coco", *args, *([str(tiny_mvtec)] if args[0] == "summary" else [])]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "COLUMNS": "200"})
    proc.stdout.close()  # long before the interpreter has started
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 128 + signal.SIGPIPE and err.strip() == b"", err
