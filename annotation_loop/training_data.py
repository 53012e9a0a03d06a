"""Turns snapshot items into image bytes for training and evaluation."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from annotation_loop.annotations import LabelledItem
from annotation_loop.storage import ObjectStore
from annotation_loop.vision import LabelledImage

logger = logging.getLogger(__name__)


def read_labelled_images(store: ObjectStore, items: Sequence[LabelledItem]) -> list[LabelledImage]:
    """Fetches the items' images concurrently; objects deleted from the bucket are skipped."""
    labels = {item.uri: item.label for item in items}
    examples: list[LabelledImage] = []
    missing: list[str] = []
    for uri, data in store.read_many(labels):
        if data is None:
            missing.append(uri)
        else:
            examples.append(LabelledImage(key=uri, data=data, label=labels[uri]))
    if missing:
        logger.warning(
            "%d labelled objects are gone from the bucket and were skipped, e.g. %s",
            len(missing),
            missing[0],
        )
    return examples
