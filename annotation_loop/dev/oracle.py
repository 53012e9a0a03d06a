"""The oracle annotator: a stand-in for people, for the demo and the tests only.

It labels tasks in Label Studio through the API from known true labels, accepting a
correct pre-annotation and correcting a wrong one, like a careful annotator would.
Real use has people in Label Studio instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tqdm import tqdm

from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.task_types import TaskType, demo_data_of


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

    @property
    def acceptance_rate(self) -> float | None:
        predicted = self.accepted + self.corrected
        return self.accepted / predicted if predicted else None


def label_with_truth(
    client: LabelStudioClient,
    task_type: TaskType,
    tasks: Sequence[OracleTask],
    truth: Mapping[str, Any],
) -> OracleReport:
    demo = demo_data_of(task_type)
    accepted = corrected = without_prediction = unknown = 0
    for task in tqdm(tasks, desc="oracle labelling", unit="task"):
        target = truth.get(task.key)
        if target is None:
            unknown += 1
            continue
        client.create_annotation(task.task_id, task_type.result_for_target(target, task.input_ref))
        if task.predicted is None:
            without_prediction += 1
        elif demo.same_target(task.predicted, target):
            accepted += 1
        else:
            corrected += 1
    return OracleReport(
        labelled=accepted + corrected + without_prediction,
        accepted=accepted,
        corrected=corrected,
        without_prediction=without_prediction,
        unknown=unknown,
    )
