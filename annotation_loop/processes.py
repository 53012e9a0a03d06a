"""Finding a process again from a record of it (its pid and when it started), as the
services' pid files, the retraining run records and the leases keep it."""

from __future__ import annotations

import psutil

# psutil reports a process's start to the hundredth of a second, the same every time it is
# asked; a pid reused by another process starts later than that.
SAME_START_S = 0.01


def alive(process: psutil.Process) -> bool:
    """Whether `process` still runs (a zombie does not)."""
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def live_process(pid: int, started: float) -> psutil.Process | None:
    """The process `pid` if it is the one that started at `started` (not the pid reused
    since) and still runs; None otherwise."""
    try:
        process = psutil.Process(pid)
        if abs(process.create_time() - started) > SAME_START_S:
            return None
    except psutil.Error:
        return None
    return process if alive(process) else None
