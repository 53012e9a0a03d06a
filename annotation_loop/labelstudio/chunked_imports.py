"""Bulk imports cut into requests Label Studio accepts, each resumed after a failure in
doubt without creating anything twice."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tqdm import tqdm

from annotation_loop.errors import LabelStudioUnreachable
from annotation_loop.labelstudio.transport import Transport

logger = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")
CHUNK_ATTEMPTS = 3
# The JSON body of one import request (tasks or predictions), at most. Label Studio 1.23
# refuses a body over its DATA_UPLOAD_MAX_MEMORY_SIZE (250 MiB unless set; the answer is an
# HTTP 500 "You cannot access body after reading from request's data stream"), its Docker
# image's nginx allows 200 MB, and the server holds the parsed body, several times its size,
# in memory. 16 MiB keeps well below all of them while 50k image tasks (~7 MB) still go in
# one request.
IMPORT_MAX_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class Chunking:
    """How an import is cut into requests."""

    unit: str  # what is imported, for the progress bar: "tasks"
    total: int | None  # how many, if known
    max_items: int
    max_bytes: int


def import_in_chunks(
    transport: Transport,
    items: Iterable[T],
    chunking: Chunking,
    encode: Callable[[T], Any],
    send: Callable[[Sequence[T], bytes], list[R]],
    already_created: Callable[[Sequence[T]], dict[int, R]],
) -> list[R]:
    """`send`s the items in chunks, taken from `items` as they go; one result per item,
    in order. `send` gets a chunk and its request body: the JSON array of the items'
    `encode`d forms.

    A chunk that failed in doubt is resumed once Label Studio answers again:
    `already_created(chunk)` maps the positions of the items that made it to their
    results, and only the others are sent again.
    """
    results: list[R] = []
    with tqdm(
        total=chunking.total,
        unit=chunking.unit,
        desc=f"Label Studio: import {chunking.unit}",
        disable=chunking.total is not None and chunking.total <= chunking.max_items,
    ) as progress:
        for chunk in json_chunks(items, encode, chunking.max_items, chunking.max_bytes):
            results.extend(_send_resumably(transport, chunk, chunking.unit, send, already_created))
            progress.update(len(chunk))
    return results


def _send_resumably(
    transport: Transport,
    chunk: Sequence[tuple[T, bytes]],
    unit: str,
    send: Callable[[Sequence[T], bytes], list[R]],
    already_created: Callable[[Sequence[T]], dict[int, R]],
) -> list[R]:
    done: dict[int, R] = {}
    items = [item for item, _ in chunk]
    pending = list(range(len(chunk)))
    for attempt in range(1, CHUNK_ATTEMPTS + 1):
        try:
            body = json_array(chunk[i][1] for i in pending)
            done.update(zip(pending, send([items[i] for i in pending], body), strict=True))
            break
        except LabelStudioUnreachable:
            if attempt == CHUNK_ATTEMPTS:
                raise
            logger.warning(
                "An import of %d %s failed in doubt: resuming it once Label Studio answers",
                len(pending),
                unit,
            )
            transport.wait_until_answering()
            made_it = already_created([items[i] for i in pending])
            done.update((pending[position], result) for position, result in made_it.items())
            pending = [i for position, i in enumerate(pending) if position not in made_it]
            if not pending:
                break
    return [done[i] for i in range(len(chunk))]


def json_chunks(
    items: Iterable[T], encode: Callable[[T], Any], max_items: int, max_bytes: int
) -> Iterator[list[tuple[T, bytes]]]:
    """The items with their JSON, `encode`d and serialized as httpx would, in runs of at
    most `max_items` whose JSON array is at most `max_bytes` long (an item longer than that
    goes alone). Taken from `items` as they go: a run is handed on as soon as it is full."""
    chunk: list[tuple[T, bytes]] = []
    size = 1  # "[" and, per item, its JSON and "," or "]"
    for item in items:
        encoded = json.dumps(
            encode(item), ensure_ascii=False, separators=(",", ":"), allow_nan=False
        ).encode()
        if chunk and size + len(encoded) + 1 > max_bytes:
            yield chunk
            chunk, size = [], 1
        chunk.append((item, encoded))
        size += len(encoded) + 1
        if len(chunk) >= max_items:
            yield chunk
            chunk, size = [], 1
    if chunk:
        yield chunk


def json_array(encoded: Iterable[bytes]) -> bytes:
    """A JSON array of already encoded items."""
    return b"[" + b",".join(encoded) + b"]"
