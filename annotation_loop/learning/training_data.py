"""Snapshot items -> model inputs with their targets, for training and evaluation."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from annotation_loop.data.storage import DataSource, ObjectStore
from annotation_loop.learning.annotations import AnnotationSnapshot, LabelledItem
from annotation_loop.task_types import Example, TaskType

logger = logging.getLogger(__name__)


def load_examples(
    task_type: TaskType, source: DataSource, items: Sequence[LabelledItem]
) -> list[Example]:
    """The items' inputs (read concurrently where they live in the bucket); items whose
    object cannot be read (refused, deleted, failing, an image too large to decode) are
    skipped: each is logged with its reason, and their number with an example."""
    by_key = {str(item.task_id): item for item in items}
    examples: list[Example] = []
    missing: list[str] = []
    refs = ((key, item.input_ref) for key, item in by_key.items())
    for key, loaded in task_type.load_inputs(ObjectStore(source), refs):
        if loaded is None:
            missing.append(by_key[key].input_ref)
        else:
            examples.append(Example(key=key, input=loaded, target=by_key[key].target))
    if missing:
        logger.warning(
            "%d of %d labelled items could not be read and were skipped (each with its "
            "reason above), e.g. %s",
            len(missing),
            len(by_key),
            missing[0],
        )
    return examples


def validation_examples(
    snapshot: AnnotationSnapshot, source: DataSource, validation_fraction: float
) -> list[Example]:
    """The inputs of the snapshot's validation split: what a new model and the production
    model are both scored on."""
    _, validation_items = snapshot.split(validation_fraction)
    return load_examples(snapshot.task_type, source, validation_items)
