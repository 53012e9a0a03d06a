"""How well a tagger finds entities: exact-match precision, recall and F1, counted by seqeval.

An entity counts as found only when its start, end and label all match a true one: spans
become IOB2 tags over the same pieces of each text, and seqeval's strict mode matches
whole entities.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from PIL import Image

from annotation_loop.errors import UnknownLabelError
from annotation_loop.learning.plots import new_figure, to_image
from annotation_loop.text.spans import OUTSIDE, Span


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


def _positions(spans: Sequence[Span], labels: Sequence[str]) -> set[tuple[int, int, str]]:
    """(start, end, label) of every span, its label checked; a span given twice counts once."""
    for span in spans:
        if span.label not in labels:
            raise UnknownLabelError(
                f"Entity label {span.label!r} is not one of {list(labels)}: "
                "evaluate with the labels the model was trained on"
            )
    return {(span.start, span.end, span.label) for span in spans}


def _iob2_tags(
    pieces: Sequence[tuple[int, int]], entities: set[tuple[int, int, str]], labels: Sequence[str]
) -> list[str]:
    """The IOB2 tag of every piece (character range, in text order) that `entities` cover.

    The type in a tag is the label's index: seqeval strips "-" from the ends of a type, so a
    label such as "X-" would otherwise merge with "X".
    """
    first_piece = {start: index for index, (start, _) in enumerate(pieces)}
    tags = [OUTSIDE] * len(pieces)
    for start, end, label in sorted(entities):
        kind = labels.index(label)
        index = first_piece.get(start)
        if index is None or start >= end:
            raise ValueError(f"Span {label} [{start}, {end}) is not a non-empty character range")
        prefix = "B"
        while index < len(pieces) and pieces[index][1] <= end:
            if tags[index] != OUTSIDE:
                raise ValueError(
                    f"Span {label} [{start}, {end}) overlaps another span of the same text: "
                    "entity metrics need the spans of a text to be disjoint, as a tagger's are"
                )
            tags[index] = f"{prefix}-{kind}"
            prefix = "I"
            index += 1
    return tags


def entity_metrics(
    true: Sequence[Sequence[Span]], predicted: Sequence[Sequence[Span]], labels: Sequence[str]
) -> EntityMetrics:
    """Metrics of the `predicted` spans of each text against its `true` spans (same order).

    Spans are character ranges; within one text, the true spans must not overlap each other,
    nor the predicted spans each other. A score with nothing to divide by (no entity
    predicted, or none to find) is 0, seqeval's `zero_division=0`.
    """
    if len(true) != len(predicted):
        raise ValueError(f"{len(true)} texts with true spans but {len(predicted)} predicted")
    # seqeval imports scikit-learn, seconds of import: only an evaluation pays for it.
    from seqeval.metrics.v1 import precision_recall_fscore_support, unique_labels
    from seqeval.scheme import IOB2

    true_tags, predicted_tags = [], []
    n_true = n_predicted = 0
    for true_spans, predicted_spans in zip(true, predicted, strict=True):
        true_entities = _positions(true_spans, labels)
        predicted_entities = _positions(predicted_spans, labels)
        n_true += len(true_entities)
        n_predicted += len(predicted_entities)
        # The pieces between consecutive boundaries of either side's spans: every span,
        # true or predicted, covers whole pieces, so equal tags mean equal character ranges.
        boundaries = sorted(
            {edge for start, end, _ in true_entities | predicted_entities for edge in (start, end)}
        )
        pieces = list(pairwise(boundaries))
        true_tags.append(_iob2_tags(pieces, true_entities, labels))
        predicted_tags.append(_iob2_tags(pieces, predicted_entities, labels))

    if not true_tags:  # seqeval refuses no texts at all; one without entities counts the same
        true_tags, predicted_tags = [[]], [[]]

    def scores(average: str | None) -> Any:
        return precision_recall_fscore_support(
            true_tags, predicted_tags, average=average, zero_division=0, scheme=IOB2
        )

    precision, recall, f1, _ = scores("micro")
    per_type = {
        labels[int(kind)]: {
            "precision": float(kind_precision),
            "recall": float(kind_recall),
            "f1": float(kind_f1),
            "support": int(support),
        }
        for kind, kind_precision, kind_recall, kind_f1, support in zip(
            unique_labels(true_tags, predicted_tags, IOB2), *scores(None), strict=True
        )
    }
    return EntityMetrics(
        precision=float(precision),
        recall=float(recall),
        f1=float(f1),
        # seqeval reports only the types that occur; a type never seen on either side is 0.
        per_type={
            label: per_type.get(label, {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0})
            for label in labels
        },
        n_examples=len(true),
        n_true=n_true,
        n_predicted=n_predicted,
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
