"""The task types the loop can run, by name (`LOOP_TASK`, a config's `task:`).

Adding one: write a `TaskType` subclass (the core; demo data and label review are optional
capabilities, see `capabilities`), register an instance with `register_task_type`, and give
it `configs/<name>/training.yaml` and `inference.yaml`. Nothing else changes.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator

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
from annotation_loop.task_types.capabilities import (
    DemoData,
    LabelReview,
    LabelUnits,
    demo_data_of,
    label_review_of,
)
from annotation_loop.task_types.detection import ObjectDetection
from annotation_loop.task_types.image import ImageClassification
from annotation_loop.task_types.metrics import (
    ClassificationScores,
    ClassScores,
    EntityScores,
    ValidationMetrics,
)
from annotation_loop.task_types.ner import NamedEntityRecognition
from annotation_loop.task_types.text import TextClassification
from annotation_loop.task_types.transcription import SpeechTranscription

TASK_TYPES: dict[str, TaskType] = {}


def register_task_type(task_type: TaskType) -> None:
    """Makes `task_type` available under its name; refuses one whose class leaves out what
    the core needs, or whose promotion metric its metrics do not declare."""
    what = f"Task type {type(task_type).__name__}"
    # The class attributes `TaskType` declares (abstract methods are checked on creation).
    missing = [name for name in TaskType.__annotations__ if not hasattr(task_type, name)]
    if missing:
        raise ConfigurationError(f"{what} does not set {', '.join(missing)}: add them to its class")
    scores = task_type.metrics_type.score_names()
    if task_type.promotion_metric not in scores:
        raise ConfigurationError(
            f"{what} promotes by {task_type.promotion_metric!r}, which "
            f"{task_type.metrics_type.__name__} does not declare: use one of {', '.join(scores)}"
        )
    if task_type.name in TASK_TYPES:
        taken_by = type(TASK_TYPES[task_type.name]).__name__
        raise ConfigurationError(
            f"{what} is named {task_type.name!r}, like {taken_by}: give it another name"
        )
    TASK_TYPES[task_type.name] = task_type


for _builtin in (
    ImageClassification(),
    TextClassification(),
    NamedEntityRecognition(),
    SpeechTranscription(),
    ObjectDetection(),
):
    register_task_type(_builtin)


def _known() -> str:
    return ", ".join(TASK_TYPES)


def get_task_type(name: str) -> TaskType:
    try:
        return TASK_TYPES[name]
    except KeyError:
        raise ConfigurationError(
            f"Unknown task type {name!r}: set LOOP_TASK to one of {_known()}"
        ) from None


def task_name(name: str) -> str:
    """`name`, if a task type is registered under it: the check behind `TaskName`, and a
    click option's `type=` (click reports the ValueError as a usage error)."""
    if name not in TASK_TYPES:
        raise ValueError(f"unknown task type {name!r}: use one of {_known()}")
    return name


# A task type's name, checked against the registry when a pydantic model or click reads it.
TaskName = Annotated[str, AfterValidator(task_name)]

__all__ = [
    "TASK_TYPES",
    "ClassScores",
    "ClassificationScores",
    "DemoData",
    "EntityScores",
    "Evaluation",
    "Example",
    "ItemListing",
    "LabelReview",
    "LabelUnits",
    "Prediction",
    "SourceItem",
    "TaskDefaults",
    "TaskName",
    "TaskType",
    "ValidationMetrics",
    "demo_data_of",
    "get_task_type",
    "label_review_of",
    "register_task_type",
    "task_name",
]
