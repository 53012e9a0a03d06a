"""Running a slow producer (a paged bucket listing, object reads) ahead of its consumer."""

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


def _produce_in_thread(
    source: Iterator[T], maxsize: int = 0
) -> tuple[queue.Queue[object], threading.Event]:
    """Starts a thread that drains `source` into the returned queue (at most `maxsize`
    items waiting; 0: no bound), then puts _DONE, or a _Failed. Setting the returned
    event stops it after the item it is producing."""
    ready: queue.Queue[object] = queue.Queue(maxsize)
    stop = threading.Event()

    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in source:
                if not put(item):
                    return
        except BaseException as exc:  # re-raised in the consumer's thread
            put(_Failed(exc))
            return
        put(_DONE)

    threading.Thread(target=produce, name="read-ahead", daemon=True).start()
    return ready, stop


def _checked(item: object) -> object:
    if isinstance(item, _Failed):
        raise item.error
    return item


def read_ahead(source: Iterator[T], limit: int) -> Iterator[list[T]]:
    """Drains `source` in a background thread; yields, each time the consumer asks, every
    item produced since it last asked (at least one, at most `limit`), in order.

    So a consumer that is busy with a bulk request gets all the pages listed meanwhile in
    one go, and sends them as one bigger request instead of many small ones, while memory
    stays bounded by `limit`. An error in `source` is raised in the consumer. If the
    consumer stops early, the thread stops after the item it is producing.
    """
    ready, stop = _produce_in_thread(source, maxsize=limit)
    try:
        while True:
            items = [_checked(ready.get())]
            while len(items) < limit and not ready.empty():
                items.append(_checked(ready.get()))
            done = items[-1] is _DONE
            if done:
                items.pop()
            if items:
                yield cast(list[T], items)
            if done:
                return
    finally:
        stop.set()


def prefetch(source: Iterator[T], limit: int) -> Iterator[T]:
    """`source`'s items, produced in a background thread up to `limit` ahead of the
    consumer: reads overlap the consumer's work while memory stays bounded by `limit`."""
    ready, stop = _produce_in_thread(source, maxsize=limit)
    try:
        while (item := _checked(ready.get())) is not _DONE:
            yield cast(T, item)
    finally:
        stop.set()
