"""Server processes: a worker never outlives its supervisor."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

PARENT = """
import multiprocessing, sys, time
from egide.server import die_with_parent

def worker() -> None:
    time.sleep(1.5)  # still starting up when the supervisor is killed
    die_with_parent()
    time.sleep(60)  # what serving would be

if __name__ == "__main__":
    child = multiprocessing.get_context("spawn").Process(target=worker)
    child.start()
    print(child.pid, flush=True)
    time.sleep(60)
"""


def test_a_worker_whose_supervisor_died_during_its_start_up_leaves(tmp_path: Path) -> None:
    script = tmp_path / "supervisor.py"
    script.write_text(PARENT)
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    worker = psutil.Process(int(parent.stdout.readline()))
    parent.send_signal(signal.SIGKILL)  # before the worker armed its parent-death signal
    parent.wait()
    deadline = time.monotonic() + 15
    while worker.is_running() and worker.status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline, "the orphaned worker is still running"
        time.sleep(0.1)
