"""A benchmark figure, and the timing helpers every benchmark uses."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


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
