"""How well a classifier does: accuracy, macro-F1, per-class scores, confusion matrix, as
scikit-learn computes them.

Shared by every classification task type (images, texts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from annotation_loop.errors import UnknownLabelError
from annotation_loop.learning.plots import new_figure, to_image


@dataclass(frozen=True)
class ClassificationMetrics:
    labels: list[str]
    accuracy: float
    per_class: dict[str, dict[str, float]]  # label -> precision, recall, f1, support
    confusion_matrix: list[list[int]]  # [true label][predicted label], in `labels` order
    n_examples: int

    @property
    def macro_f1(self) -> float:
        return float(np.mean([scores["f1"] for scores in self.per_class.values()]))

    def to_metadata(self) -> dict[str, Any]:
        """A JSON-able summary, e.g. for ZenML artifact or model metadata."""
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "n_examples": self.n_examples,
            "labels": self.labels,
            "per_class": self.per_class,
            "confusion_matrix": self.confusion_matrix,
        }


def compute_metrics(
    true_labels: Sequence[str], predicted_labels: Sequence[str], labels: Sequence[str]
) -> ClassificationMetrics:
    """Metrics of `predicted_labels` against `true_labels` (same order), over `labels`.

    A class never predicted (or never present) scores 0 rather than NaN; no examples at all
    give zeros everywhere.
    """
    # scikit-learn takes seconds to import: only an evaluation pays for it, not every module
    # that names the metrics type.
    from sklearn.metrics import confusion_matrix, precision_recall_fscore_support

    known = set(labels)
    for label in (*true_labels, *predicted_labels):
        if label not in known:
            raise UnknownLabelError(f"Label {label!r} is not one of {list(labels)}")
    if len(true_labels) != len(predicted_labels):
        raise ValueError(
            f"{len(true_labels)} true labels but {len(predicted_labels)} predicted: "
            "evaluate every example once"
        )
    n = len(true_labels)
    if n == 0:  # scikit-learn refuses empty input; an evaluation that scored nothing is 0
        zeros = np.zeros(len(labels))
        matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
        precision, recall, f1, support = zeros, zeros, zeros, zeros.astype(np.int64)
    else:
        matrix = confusion_matrix(true_labels, predicted_labels, labels=list(labels))
        # F1 as 2tp / (2tp + fp + fn): the harmonic mean of precision and recall, up to the
        # last bit of a float.
        precision, recall, f1, support = precision_recall_fscore_support(
            true_labels, predicted_labels, labels=list(labels), zero_division=0.0
        )
    return ClassificationMetrics(
        labels=list(labels),
        accuracy=float(np.trace(matrix) / n) if n else 0.0,
        per_class={
            label: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, label in enumerate(labels)
        },
        confusion_matrix=matrix.tolist(),
        n_examples=n,
    )


def plot_confusion_matrix(metrics: ClassificationMetrics) -> Image.Image:
    """A PNG-ready picture of the confusion matrix, with the count in every cell."""
    matrix = np.array(metrics.confusion_matrix)
    n = len(metrics.labels)
    side = max(4.0, 0.6 * n + 2.0)
    figure = new_figure(side, side)
    axes = figure.add_subplot()
    axes.imshow(matrix, cmap="Blues", vmin=0)
    threshold = matrix.max() / 2 if matrix.size else 0
    for (row, column), count in np.ndenumerate(matrix):
        axes.text(
            column,
            row,
            str(count),
            ha="center",
            va="center",
            color="white" if count > threshold else "black",
        )
    axes.set_xticks(range(n), metrics.labels, rotation=45 if n > 10 else 0)
    axes.set_yticks(range(n), metrics.labels)
    axes.set_xlabel("Predicted label")
    axes.set_ylabel("True label")
    axes.set_title(
        f"Accuracy {metrics.accuracy:.1%}, macro-F1 {metrics.macro_f1:.1%} "
        f"on {metrics.n_examples} items"
    )
    return to_image(figure)
