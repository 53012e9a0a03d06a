"""How well a tagger finds entities: exact-match precision, recall and F1, as seqeval counts.

An entity counts as found only when its start, end and label all match a true one.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from PIL import Image

from annotation_loop.errors import UnknownLabelError
from annotation_loop.learning.plots import new_figure, to_image
from annotation_loop.text.spans import Span


@dataclass(frozen=True)
class EntityMetrics:
    precision: float  # micro-averaged over all entities
    recall: float
    f1: float
    per_type: dict[str, dict[str, float]]  # label -> precision, recall, f1, support
    n_examples: int  # texts
    n_true: int  # entities
    n_predicted: int

    def to_metadata(self) -> dict[str, Any]:
        """A JSON-able summary, e.g. for ZenML artifact or model metadata."""
        return {
            "precision": self.precision,
            "recall": self.recall,
            "f1": self.f1,
            "n_examples": self.n_examples,
            "n_true": self.n_true,
            "n_predicted": self.n_predicted,
            "per_type": self.per_type,
        }


def _ratio(numerator: int | float, denominator: int | float) -> float:
    # Nothing predicted (or nothing to find) scores 0 rather than NaN.
    return float(numerator / denominator) if denominator else 0.0


def _scores(correct: int, true: int, predicted: int) -> dict[str, float]:
    precision, recall = _ratio(correct, predicted), _ratio(correct, true)
    return {
        "precision": precision,
        "recall": recall,
        "f1": _ratio(2 * precision * recall, precision + recall),
        "support": true,
    }


def _entities(texts: Sequence[Sequence[Span]], labels: Sequence[str]) -> set[tuple[int, Span]]:
    """(text index, span without its score) for every span, its label checked."""
    entities = set()
    for index, spans in enumerate(texts):
        for span in spans:
            if span.label not in labels:
                raise UnknownLabelError(
                    f"Entity label {span.label!r} is not one of {list(labels)}: "
                    "evaluate with the labels the model was trained on"
                )
            entities.add((index, Span(span.start, span.end, span.label)))
    return entities


def entity_metrics(
    true: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]], labels: Sequence[str]
) -> EntityMetrics:
    """Metrics of the `predicted` spans of each text against its `true` spans (same order)."""
    if len(true) != len(predicted):
        raise ValueError(f"{len(true)} texts with true spans but {len(predicted)} predicted")
    true_entities, predicted_entities = _entities(true, labels), _entities(predicted, labels)
    correct = true_entities & predicted_entities

    def per_label(entities: set[tuple[int, Span]]) -> Counter[str]:
        return Counter(span.label for _, span in entities)

    correct_by, true_by, predicted_by = (
        per_label(entities) for entities in (correct, true_entities, predicted_entities)
    )
    overall = _scores(len(correct), len(true_entities), len(predicted_entities))
    return EntityMetrics(
        precision=overall["precision"],
        recall=overall["recall"],
        f1=overall["f1"],
        per_type={
            label: _scores(correct_by[label], true_by[label], predicted_by[label])
            for label in labels
        },
        n_examples=len(true),
        n_true=len(true_entities),
        n_predicted=len(predicted_entities),
    )


def plot_entity_scores(metrics: EntityMetrics) -> Image.Image:
    """A PNG-ready bar chart of every entity type's F1, titled with the overall scores."""
    labels = list(metrics.per_type)
    figure = new_figure(max(4.0, 0.8 * len(labels) + 2.0), 4.0)
    axes = figure.add_subplot()
    f1 = [metrics.per_type[label]["f1"] for label in labels]
    bars = axes.bar(range(len(labels)), f1, color="tab:blue")
    axes.bar_label(bars, labels=[f"{value:.0%}" for value in f1])
    axes.set_xticks(
        range(len(labels)),
        [f"{label}\n({int(metrics.per_type[label]['support'])})" for label in labels],
        rotation=45 if len(labels) > 8 else 0,
    )
    axes.set_ylim(0, 1.1)
    axes.set_xlabel("Entity type (true entities)")
    axes.set_ylabel("F1")
    axes.set_title(
        f"Precision {metrics.precision:.1%}, recall {metrics.recall:.1%}, F1 {metrics.f1:.1%}\n"
        f"on {metrics.n_true} entities in {metrics.n_examples} texts"
    )
    return to_image(figure)
