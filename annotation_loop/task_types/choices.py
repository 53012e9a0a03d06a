"""Single-choice classification in Label Studio terms: a `Choices` control over one object
tag (an `Image`, a `Text`), and the task type base the image and text classification task
types share."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar
from xml.sax.saxutils import quoteattr

import numpy as np

from annotation_loop.errors import ConfigurationError, UnknownLabelError
from annotation_loop.task_types.base import Evaluation, Example, Prediction, TaskType
from annotation_loop.task_types.capabilities import LabelReview, LabelUnits
from annotation_loop.task_types.metrics import ClassificationScores

if TYPE_CHECKING:
    from annotation_loop.learning.classification_metrics import ClassificationMetrics

FROM_NAME = "label"


def check_labels(labels: Sequence[str]) -> None:
    if not labels:
        raise ConfigurationError('The label list is empty: set LOOP_LABELS, e.g. \'["cat","dog"]\'')
    if len(set(labels)) != len(labels):
        raise ConfigurationError(f"The label list has duplicates: {list(labels)}")


def choices_config(object_tag: str, to_name: str, labels: Sequence[str]) -> str:
    """A label config: `object_tag` (e.g. `<Image name="image" value="$image"/>`, named
    `to_name`) and one single-choice `Choices` over it."""
    check_labels(labels)
    choices = "\n    ".join(f"<Choice value={quoteattr(label)}/>" for label in labels)
    return (
        "<View>\n"
        f"  {object_tag}\n"
        f'  <Choices name="{FROM_NAME}" toName="{to_name}" choice="single" showInline="true">\n'
        f"    {choices}\n"
        "  </Choices>\n"
        "</View>"
    )


def result_for_label(label: str, to_name: str) -> list[dict[str, Any]]:
    return [
        {
            "from_name": FROM_NAME,
            "to_name": to_name,
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]


def label_from_result(
    result: Sequence[dict[str, Any]], labels: Sequence[str], where: str = "an annotation"
) -> str | None:
    """The chosen label of an annotation/prediction result, or None if it chose nothing."""
    for region in result:
        if region.get("from_name") == FROM_NAME and region.get("type") == "choices":
            choices = region.get("value", {}).get("choices") or []
            if not choices:
                continue
            label = str(choices[0])
            if label not in labels:
                raise UnknownLabelError(
                    f"Label {label!r} of {where} is not in the label list {list(labels)}: fix "
                    "the annotation in Label Studio or add the label to LOOP_LABELS"
                )
            return label
    return None


def classification_evaluation(metrics: ClassificationMetrics) -> Evaluation:
    """`metrics` as the declared scores, with their confusion matrix."""
    from annotation_loop.learning.classification_metrics import plot_confusion_matrix

    return Evaluation(
        ClassificationScores.model_validate(metrics, from_attributes=True),
        plot_confusion_matrix(metrics),
    )


def _model_label(label: str, labels: Sequence[str], what: str) -> int:
    if label not in labels:
        raise UnknownLabelError(
            f"{what} is labelled {label!r}, which the model does not predict ({list(labels)}): "
            "train a model on the current label list first"
        )
    return list(labels).index(label)


def _embedding(prediction: Prediction) -> np.ndarray:
    if prediction.embedding is None:
        raise ValueError(f"The prediction of {prediction.key} has no embedding")
    return prediction.embedding


class SingleChoiceTaskType(TaskType, LabelReview):
    """What image and text classification share: one `Choices` label per item, over the
    object tag `to_name`, classification scores, and label review with one unit per item."""

    to_name: ClassVar[str]
    metrics_type = ClassificationScores
    agreement_kind = "labels"

    def target_from_result(
        self, result: Sequence[dict[str, Any]], input_ref: str, labels: Sequence[str], where: str
    ) -> str | None:
        return label_from_result(result, labels, where)

    def result_for_target(self, target: Any, input_ref: str) -> list[dict[str, Any]]:
        return result_for_label(str(target), self.to_name)

    def label_units(
        self, model: Any, examples: Sequence[Example], batch_size: int = 64
    ) -> LabelUnits:
        """One unit per example the model reads: its prediction's embedding, and its label as
        an index into the model's labels (`model.labels`)."""
        classes = tuple(model.labels)
        given = [_model_label(str(e.target), classes, f"Item {e.key}") for e in examples]
        # Keyed by position, so that the predictions say which example they belong to.
        predictions, _ = self.predict(
            model, [(str(i), e.input) for i, e in enumerate(examples)], batch_size
        )
        if not predictions:
            return LabelUnits.empty(classes)
        example = np.array([int(p.key) for p in predictions], dtype=np.int64)
        return LabelUnits(
            features=np.stack([_embedding(p) for p in predictions]).astype(np.float32),
            given=np.array(given, dtype=np.int64)[example],
            example=example,
            position=np.zeros(len(example), dtype=np.int64),
            classes=classes,
        )

    def suggest_target(self, model: Any, example: Example, suggestions: Mapping[int, str]) -> str:
        """The suggested label of a classified item (its one unit is at position 0)."""
        if set(suggestions) - {0}:
            raise ValueError(f"A classified item has one unit, at 0, not {sorted(suggestions)}")
        label = suggestions.get(0, str(example.target))
        _model_label(label, model.labels, f"The suggestion for {example.key}")
        return label
