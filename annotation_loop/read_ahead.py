"""Running a slow producer (a paged bucket listing) ahead of its consumer (bulk imports)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar, cast

T = TypeVar("T")

_DONE = object()


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


def read_ahead(source: Iterator[T]) -> Iterator[list[T]]:
    """Drains `source` in a background thread; yields, each time the consumer asks, every
    item produced since it last asked (at least one), in order.

    So a consumer that is busy with a bulk request gets all the pages listed meanwhile in
    one go, and sends them as one bigger request instead of many small ones. An error in
    `source` is raised in the consumer. If the consumer stops early, the thread stops after
    the item it is producing.
    """
    ready: queue.SimpleQueue[object] = queue.SimpleQueue()
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in source:
                ready.put(item)
                if stop.is_set():
                    return
        except BaseException as exc:  # re-raised in the consumer's thread
            ready.put(_Failed(exc))
        ready.put(_DONE)

    threading.Thread(target=produce, name="read-ahead", daemon=True).start()
    try:
        while True:
            items = [ready.get()]
            while not ready.empty():
                items.append(ready.get())
            done = items[-1] is _DONE
            if done:
                items.pop()
            for item in items:
                if isinstance(item, _Failed):
                    raise item.error
            if items:
                yield cast(list[T], items)
            if done:
                return
    finally:
        stop.set()
