"""A stop signal is never lost where Python swallows the error its handler raises."""

from __future__ import annotations

import subprocess
import sys

import pytest

SETUP = """
import os, signal, sys
from mvtec2coco.runtime.staging import Interrupted, install_signal_handlers
install_signal_handlers()

def signal_here():
    signal.raise_signal(signal.SIGTERM)
    return sum(range(100))  # the handler runs on this line, inside the caller's context
"""

WAIT_THEN_REPORT = """    end = time.monotonic() + 5
    while time.monotonic() < end:
        pass
    print("went on")
except Interrupted as exc:
    print("stopped", exc)
"""

SWALLOWING = {
    # logging releases its lock in an after-fork hook: torch's DataLoader forking its workers hit it
    "after a fork, in the parent's hook": """
os.register_at_fork(after_in_parent=signal_here)
pid = os.fork()
if pid == 0:
    os._exit(0)
os.waitpid(pid, 0)
""",
    "in a __del__": """
class Dropped:
    def __del__(self):
        signal_here()
Dropped()
""",
}


@pytest.mark.parametrize("where", list(SWALLOWING))
def test_a_stop_signal_raised_where_python_swallows_errors_still_stops(where):
    """The handler's ``Interrupted`` raised inside a fork hook or a ``__del__`` is reported to
    the unraisable hook, not raised: the signal is sent again, so the program still stops, in
    its own code, with nothing printed about an ignored exception; other swallowed errors are
    still reported as before."""
    body = "".join(f"    {line}\n" for line in SWALLOWING[where].strip().splitlines())
    script = SETUP + "import time\ntry:\n" + body + WAIT_THEN_REPORT
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "stopped SIGTERM", done.stdout + done.stderr
    assert "Exception ignored" not in done.stderr


def test_other_swallowed_errors_are_still_reported():
    script = SETUP + """
class Broken:
    def __del__(self):
        raise ValueError("from a __del__")
Broken()
print("went on")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "went on"
    assert "Exception ignored" in done.stderr and "ValueError: from a __del__" in done.stderr


def test_once_stopping_errors_of_half_built_objects_are_not_reported():
    """After the stop, a ``__del__`` failing on an object the stop cut short prints nothing: the
    run's last word stays the one line that says it was interrupted."""
    script = SETUP + """
class HalfBuilt:
    def __init__(self):
        signal.raise_signal(signal.SIGTERM)
        self.ready = True
    def __del__(self):
        self.ready  # never set: the stop came first
try:
    HalfBuilt()
except Interrupted as exc:
    print("stopped", exc)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.stdout.strip() == "stopped SIGTERM"
    assert done.stderr == ""
