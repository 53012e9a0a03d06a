"""What a task type may do beyond the core the loop needs: seed the demo, review labels,
answer for a region an annotator marks.

A task type opts in by having the protocol's methods (the built-in ones subclass the
protocols, to inherit their defaults and have mypy check the signatures). Code that needs a
capability asks for it with `demo_data_of` / `label_review_of`, which refuse a task type
without it in one line, instead of failing on a missing method halfway through a run;
`interactive_prediction_of` gives None instead, since the ML backend then simply answers no
interactive request.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from annotation_loop.data.storage import ObjectStore
from annotation_loop.errors import ConfigurationError, LoopError
from annotation_loop.task_types.base import Example, TaskType


@runtime_checkable
class DemoData(Protocol):
    """A demo dataset with known true targets, for the demo and its oracle annotator."""

    @abstractmethod
    def seed_demo(
        self, store: ObjectStore, batches: int, batch_size: int, seed: int
    ) -> dict[str, Any]:
        """Writes the demo dataset's batches (keeping existing ones); item key -> true target."""
        ...

    def same_target(self, a: Any, b: Any) -> bool:
        """Whether a pre-annotation needs no change to become the annotation."""
        return bool(a == b)


@dataclass(frozen=True)
class LabelUnits:
    """What label-issue review checks: one unit per classified item; one per word for NER."""

    features: np.ndarray  # (m, d) float32: the model's features of each unit
    given: np.ndarray  # (m,) index into `classes` of the label the annotation gives the unit
    example: np.ndarray  # (m,) index of the example (in the input sequence) the unit belongs to
    position: np.ndarray  # (m,) the unit's position in its example: 0, or the word's index
    classes: tuple[str, ...]

    @classmethod
    def empty(cls, classes: tuple[str, ...]) -> LabelUnits:
        """No units: the model could read none of the examples."""
        no_indexes = np.empty(0, dtype=np.int64)
        return cls(np.empty((0, 0), dtype=np.float32), no_indexes, no_indexes, no_indexes, classes)


@runtime_checkable
class LabelReview(Protocol):
    """Label-issue review: the model's view of each annotated unit, and relabelled targets."""

    @abstractmethod
    def label_units(
        self, model: Any, examples: Sequence[Example], batch_size: int = 64
    ) -> LabelUnits:
        """The units of `examples` with the model's features and their annotated classes.

        Examples the model cannot read (a corrupt image, an empty text) have no units. Raises
        `UnknownLabelError` for an annotation whose label the model does not predict.
        """
        ...

    @abstractmethod
    def suggest_target(self, model: Any, example: Example, suggestions: Mapping[int, str]) -> Any:
        """`example`'s target with the units at these positions (`LabelUnits.position`)
        relabelled to these classes (names from `LabelUnits.classes` of the same model)."""
        ...


class RegionError(LoopError):
    """A region of an interactive request that cannot be answered: a field missing, of the
    wrong type, or outside the input. The ML backend skips that region with a warning."""


@runtime_checkable
class InteractivePrediction(Protocol):
    """The model's answer for one region an annotator marks in Label Studio (the `context`
    of the ML backend's interactive `/predict`): a box on an image, a span of a text, a
    segment of audio. It runs while the annotator waits: one region, one input, no batch."""

    @abstractmethod
    def predict_region(
        self, model: Any, input: Any, region: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The Label Studio result answering `region` (one result of the request's
        `context["result"]`, in Label Studio's shape: `from_name`, `to_name`, `type`,
        `value`), with the model's label and its `score` in [0, 1]; keep the region's `id`,
        `from_name` and `to_name`, so the editor puts the answer on the annotator's region.

        None when the region is not one this task type answers for (another control's, or
        another kind); raises `RegionError` for a region of its kind that cannot be used.
        `input` is what `TaskType.load_inputs` gives for the task (never None)."""
        ...


def demo_data_of(task_type: TaskType) -> DemoData:
    """`task_type` as demo data; a `ConfigurationError` if it has none."""
    if not isinstance(task_type, DemoData):
        raise ConfigurationError(
            f"Task type {task_type.name!r} has no demo dataset (no seed_demo/same_target): "
            "put its items in the bucket and label them in Label Studio instead of the demo"
        )
    return task_type


def label_review_of(task_type: TaskType) -> LabelReview:
    """`task_type` as label review; a `ConfigurationError` if it has none."""
    if not isinstance(task_type, LabelReview):
        raise ConfigurationError(
            f"Task type {task_type.name!r} has no label review (no label_units/suggest_target): "
            "train it without the review_labels step"
        )
    return task_type


def interactive_prediction_of(task_type: TaskType) -> InteractivePrediction | None:
    """`task_type` as interactive prediction; None if it answers no region."""
    return task_type if isinstance(task_type, InteractivePrediction) else None
