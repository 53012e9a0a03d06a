"""A benchmark figure, and the timing helpers every benchmark uses."""

from __future__ import annotations

import json
import multiprocessing
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import click
import torch


@dataclass
class Row:
    measure: str
    ours: float
    unit: str
    peer: float | None = None
    peer_name: str = ""

    @property
    def ratio(self) -> float | None:
        return self.ours / self.peer if self.peer else None


def median_rate(count: int, runs: list[float]) -> float:
    return count / statistics.median(runs)


def timed(func: Callable[..., object], *args: Any, **kwargs: Any) -> float:
    start = time.perf_counter()
    func(*args, **kwargs)
    return time.perf_counter() - start


def _peak_rss_kib() -> int:
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:")))


def peak_rss_growth_mib(func: Callable[..., object], *args: Any) -> float:
    """How far resident memory peaks while `func(*args)` runs, in MiB, above where it stood
    before: in a fresh process, as a pipeline step would run, so that memory freed by
    earlier work in this one cannot hide the growth. `func` and `args` must pickle."""
    pool = multiprocessing.get_context("spawn").Pool(1)
    try:
        return float(pool.apply(_rss_growth_mib, (func, *args)))
    finally:
        pool.close()  # not terminate(): a killed worker leaks its semaphores
        pool.join()


def _rss_growth_mib(func: Callable[..., object], *args: Any) -> float:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: peak RSS := current RSS
    before = _peak_rss_kib()
    func(*args)
    return (_peak_rss_kib() - before) / 1024


def machine() -> str:
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return f"{platform.machine()}, {os.cpu_count()} cores, {gpu}"


def report(rows: Sequence[Row], path: Path, context: dict[str, Any]) -> None:
    """Prints the rows as a table under `context` and writes both to `path` as JSON."""
    context = {"machine": machine(), **context}
    click.echo("\n" + "; ".join(f"{k}: {v}" for k, v in context.items()) + " (medians)\n")
    width = max(len(row.measure) for row in rows)
    header = f"{'measure':{width}} {'ours':>12} {'unit':14} {'peer':>12}  {'ratio':>7}  peer"
    click.echo(header + "\n" + "-" * len(header))
    for row in rows:
        peer = f"{row.peer:12.2f}" if row.peer else " " * 12
        ratio = f"{row.ratio:7.2f}" if row.ratio else " " * 7
        click.echo(
            f"{row.measure:{width}} {row.ours:12.2f} {row.unit:14} {peer}  {ratio}  {row.peer_name}"
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({**context, "rows": [asdict(r) | {"ratio": r.ratio} for r in rows]}, indent=2)
    )
    click.echo(f"\nWritten to {path}")
