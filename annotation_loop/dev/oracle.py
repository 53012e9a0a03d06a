"""The oracle annotator: a stand-in for people, for the demo and the tests only.

It labels tasks in Label Studio through the API from known true labels, accepting a
correct pre-annotation and correcting a wrong one, like a careful annotator would.
Real use has people in Label Studio instead.

Its report counts what a person would have kept of the pre-annotations: whole items, or,
for a task type whose demo data counts units (`KeptUnits`: the boxes of an image), units.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from tqdm import tqdm

from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.task_types import DemoData, TaskType, demo_data_of


@runtime_checkable
class KeptUnits(Protocol):
    """Demo data whose pre-annotations are judged unit by unit (the boxes of an image), not
    as a whole: an annotator fixing one box of five keeps the other four."""

    unit_name: str  # what a unit is, plural: "boxes"

    def kept_units(self, predicted: Any, truth: Any) -> tuple[int, int]:
        """(units of `predicted` kept unchanged given `truth`, units of `predicted`)."""
        ...


def kept_units(demo: DemoData, predicted: Any, truth: Any) -> tuple[int, int]:
    """(units kept, units pre-annotated): the demo data's own count, else the item as one
    unit, kept when it needs no change."""
    if isinstance(demo, KeptUnits):
        return demo.kept_units(predicted, truth)
    return (1 if demo.same_target(predicted, truth) else 0), 1


def unit_name(task_type: TaskType) -> str:
    """What the oracle's acceptance counts for this task type: "boxes", or "items"."""
    return task_type.unit_name if isinstance(task_type, KeptUnits) else "items"


@dataclass(frozen=True)
class OracleTask:
    task_id: int
    key: str  # the item's key under the dataset ("batch_1/00001.png", "batch_1/t.jsonl#7")
    input_ref: str  # what the task shows the model: an object URI, or the text
    predicted: Any | None = None  # the pre-annotation's target, if it had one


@dataclass(frozen=True)
class OracleReport:
    labelled: int
    accepted: int  # pre-annotation was right and kept unchanged
    corrected: int  # pre-annotation was wrong and replaced
    without_prediction: int
    unknown: int  # no true label known for the object: left for people
    # Pre-annotated units (items, or boxes: see `KeptUnits`) and those kept unchanged.
    kept_units: int = 0
    predicted_units: int = 0

    @property
    def acceptance_rate(self) -> float | None:
        """The share of pre-annotated units kept unchanged: of items, or of boxes."""
        return self.kept_units / self.predicted_units if self.predicted_units else None


def label_with_truth(
    client: LabelStudioClient,
    task_type: TaskType,
    tasks: Sequence[OracleTask],
    truth: Mapping[str, Any],
) -> OracleReport:
    demo = demo_data_of(task_type)
    accepted = corrected = without_prediction = unknown = 0
    kept = predicted_units = 0
    for task in tqdm(tasks, desc="oracle labelling", unit="task"):
        target = truth.get(task.key)
        if target is None:
            unknown += 1
            continue
        client.create_annotation(task.task_id, task_type.result_for_target(target, task.input_ref))
        if task.predicted is None:
            without_prediction += 1
            continue
        if demo.same_target(task.predicted, target):
            accepted += 1
        else:
            corrected += 1
        task_kept, task_units = kept_units(demo, task.predicted, target)
        kept += task_kept
        predicted_units += task_units
    return OracleReport(
        labelled=accepted + corrected + without_prediction,
        accepted=accepted,
        corrected=corrected,
        without_prediction=without_prediction,
        unknown=unknown,
        kept_units=kept,
        predicted_units=predicted_units,
    )
