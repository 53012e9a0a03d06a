"""The task types the loop can run, by name (`LOOP_TASK`).

Adding one: write a `TaskType` subclass in a module of this package, add it below, and
give it `configs/<name>/training.yaml` and `inference.yaml`. Nothing else changes.
"""

from __future__ import annotations

from annotation_loop.errors import ConfigurationError
from annotation_loop.task_types.base import (
    Evaluation,
    Example,
    ItemListing,
    Prediction,
    SourceItem,
    TaskDefaults,
    TaskType,
)
from annotation_loop.task_types.image import ImageClassification
from annotation_loop.task_types.ner import NamedEntityRecognition
from annotation_loop.task_types.text import TextClassification

TASK_TYPES: dict[str, TaskType] = {
    unit.name: unit
    for unit in (ImageClassification(), TextClassification(), NamedEntityRecognition())
}


def get_task_type(name: str) -> TaskType:
    try:
        return TASK_TYPES[name]
    except KeyError:
        raise ConfigurationError(
            f"Unknown task type {name!r}: set LOOP_TASK to one of {', '.join(TASK_TYPES)}"
        ) from None


__all__ = [
    "TASK_TYPES",
    "Evaluation",
    "Example",
    "ItemListing",
    "Prediction",
    "SourceItem",
    "TaskDefaults",
    "TaskType",
    "get_task_type",
]
