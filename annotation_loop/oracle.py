"""The oracle annotator: a stand-in for people, for the demo and the tests only.

It labels tasks in Label Studio through the API from known true labels, accepting a
correct pre-annotation and correcting a wrong one, like a careful annotator would.
Real use has people in Label Studio instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tqdm import tqdm

from annotation_loop.image_classification import result_for_label
from annotation_loop.labelstudio import LabelStudioClient


@dataclass(frozen=True)
class OracleTask:
    task_id: int
    key: str  # the object's key under the dataset ("batch_1/00001.png")
    predicted_label: str | None = None


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
    client: LabelStudioClient, tasks: Sequence[OracleTask], truth: Mapping[str, str]
) -> OracleReport:
    accepted = corrected = without_prediction = unknown = 0
    for task in tqdm(tasks, desc="oracle labelling", unit="task"):
        label = truth.get(task.key)
        if label is None:
            unknown += 1
            continue
        client.create_annotation(task.task_id, result_for_label(label))
        if task.predicted_label is None:
            without_prediction += 1
        elif task.predicted_label == label:
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
