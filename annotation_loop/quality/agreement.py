"""How far annotators agree on the tasks several of them labelled (the overlap set).

What is measured depends on a task type's targets (`TaskType.agreement_kind`):
- "labels": Krippendorff's alpha (nominal) over all annotators, "labelled nothing" being a
  category of its own; per class, the alpha of "this class or another"; per annotator pair,
  Cohen's kappa on the tasks both labelled.
- "spans": entity F1 of one annotator's spans against the other's, exact match (F1 is
  symmetric, so either can be the reference), pooled over the tasks and pairs.
- "boxes": F1 of boxes matched one-to-one with the same label and an IoU of at least 0.5.
- "transcripts": 1 - WER between two transcripts, taken both ways so that it is symmetric.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

from annotation_loop.detection.boxes import ImageBoxes, matched_boxes
from annotation_loop.quality.consensus import AnnotatorNames, annotator_name
from annotation_loop.task_types.base import AgreementKind, TaskType

if TYPE_CHECKING:
    from annotation_loop.learning.annotations import LabelledItem

NOT_MEASURED = "not measured"
# Boxes of two annotators count as the same object from this overlap on (PASCAL VOC's).
AGREEMENT_IOU = 0.5
# How the measures read in `AgreementReport.lines`.
MEASURE_NAMES = {
    "krippendorff_alpha": "Krippendorff's alpha",
    "cohen_kappa": "Cohen's kappa",
    "span_f1": "span F1",
    "box_f1": f"box F1 (IoU >= {AGREEMENT_IOU})",
    "word_accuracy": "1 - WER",
}


@dataclass(frozen=True)
class PairAgreement:
    annotator_a: str  # Label Studio user ids, a < b
    annotator_b: str
    tasks: int  # tasks both labelled
    value: float | None  # None where the measure is undefined (too few tasks, one class)

    @property
    def name(self) -> str:
        return f"{self.annotator_a} vs {self.annotator_b}"


@dataclass(frozen=True)
class AgreementReport:
    measure: str  # of `overall` and `per_class`: a key of MEASURE_NAMES, or NOT_MEASURED
    pair_measure: str  # of `pairs`
    tasks: int  # tasks labelled by several annotators
    annotations: int  # their annotations
    overall: float | None
    per_class: dict[str, float | None]  # None for a class nobody used
    pairs: tuple[PairAgreement, ...]

    def as_metadata(self) -> dict[str, Any]:
        """The figures for a model version's metadata (those that exist), e.g.
        {"measure": "krippendorff_alpha", "krippendorff_alpha": 0.8, "per_class": {...},
        "pairs": {"3 vs 4": {"tasks": 20, "cohen_kappa": 0.75}}}."""
        metadata: dict[str, Any] = {
            "measure": self.measure,
            "tasks": self.tasks,
            "annotations": self.annotations,
        }
        if self.measure == NOT_MEASURED:
            return metadata
        if self.overall is not None:
            metadata[self.measure] = self.overall
        metadata["per_class"] = {
            label: value for label, value in self.per_class.items() if value is not None
        }
        metadata["pairs"] = {
            pair.name: {
                "tasks": pair.tasks,
                **({} if pair.value is None else {self.pair_measure: pair.value}),
            }
            for pair in self.pairs
        }
        return metadata

    def lines(self, names: AnnotatorNames | None = None) -> list[str]:
        """The report in a few lines, for a terminal; annotators by `names` where known."""
        if self.measure == NOT_MEASURED:
            return ["Agreement: not measured for this task type"]
        if self.tasks == 0:
            return ["Agreement: no overlap tasks yet (no task labelled by several annotators)"]
        lines = [
            f"Agreement on {self.tasks} overlap tasks ({self.annotations} annotations): "
            f"{MEASURE_NAMES[self.measure]} {_figure(self.overall)}"
        ]
        if self.per_class:
            classes = ", ".join(f"{label} {_figure(v)}" for label, v in self.per_class.items())
            lines.append(f"  per class: {classes}")
        lines += [
            f"  {annotator_name(pair.annotator_a, names)} vs "
            f"{annotator_name(pair.annotator_b, names)}: {MEASURE_NAMES[self.pair_measure]} "
            f"{_figure(pair.value)} on {pair.tasks} tasks"
            for pair in self.pairs
        ]
        return lines


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


# Two annotators' targets of each task both labelled.
PairTargets = list[tuple[Any, Any]]
Pairs = dict[tuple[str, str], PairTargets]
# (overall, per class, per pair) from the overlap tasks and their pairs' targets.
Measurement = tuple[float | None, dict[str, float | None], dict[tuple[str, str], float | None]]
Measure = Callable[[Sequence["LabelledItem"], Pairs, Sequence[str]], Measurement]


def measure_agreement(
    task_type: TaskType, items: Iterable[LabelledItem], labels: Sequence[str]
) -> AgreementReport:
    """Agreement on the `items` labelled by several annotators (pass decided and undecided
    ones: a task whose annotators disagree is what agreement is about); others are ignored."""
    overlap = [item for item in items if item.shared]
    annotations = sum(len(item.annotations) for item in overlap)
    kind = task_type.agreement_kind
    if kind is None:
        return AgreementReport(NOT_MEASURED, NOT_MEASURED, len(overlap), annotations, None, {}, ())
    measure, pair_measure, measured = _MEASURES[kind]
    pairs = _pair_targets(overlap)
    overall, per_class, by_pair = measured(overlap, pairs, labels)
    return AgreementReport(
        measure=measure,
        pair_measure=pair_measure,
        tasks=len(overlap),
        annotations=annotations,
        overall=overall,
        per_class=per_class,
        pairs=tuple(PairAgreement(a, b, len(pairs[a, b]), by_pair[a, b]) for a, b in sorted(pairs)),
    )


def _pair_targets(overlap: Sequence[LabelledItem]) -> Pairs:
    """Each pair of annotators (ids in order) with their targets of the tasks both labelled."""
    pairs: Pairs = {}
    for item in overlap:
        targets = {label.annotator: label.target for label in item.annotations}
        for a, b in combinations(sorted(targets), 2):
            pairs.setdefault((a, b), []).append((targets[a], targets[b]))
    return pairs


def _pooled(pairs: Pairs) -> Iterator[tuple[Any, Any]]:
    """The targets of every pair, together."""
    for targets in pairs.values():
        yield from targets


# -- one label per task ----------------------------------------------------------------
def _label_agreement(
    overlap: Sequence[LabelledItem],
    pairs: Pairs,
    labels: Sequence[str],
) -> Measurement:
    # Categories as numbers, as krippendorff takes them; None ("labelled nothing") is one.
    categories: dict[Any, int] = {label: code for code, label in enumerate(labels)}
    for item in overlap:
        for label in item.annotations:
            categories.setdefault(label.target, len(categories))
    annotators = sorted({label.annotator for item in overlap for label in item.annotations})
    row = {annotator: index for index, annotator in enumerate(annotators)}
    data = np.full((len(annotators), len(overlap)), np.nan)
    for column, item in enumerate(overlap):
        for label in item.annotations:
            data[row[label.annotator], column] = categories[label.target]
    per_class = {
        label: _alpha(np.where(np.isnan(data), np.nan, data == categories[label]))
        for label in labels
    }
    by_pair = {
        pair: _kappa([categories[a] for a, _ in targets], [categories[b] for _, b in targets])
        for pair, targets in pairs.items()
    }
    return _alpha(data), per_class, by_pair


def _alpha(data: np.ndarray) -> float | None:
    """Nominal Krippendorff's alpha of an annotators x tasks matrix (NaN: not labelled);
    None when a single category is used, where expected disagreement is 0."""
    if len(np.unique(data[~np.isnan(data)])) < 2:
        return None
    import krippendorff

    return float(krippendorff.alpha(reliability_data=data, level_of_measurement="nominal"))


def _kappa(a: Sequence[int], b: Sequence[int]) -> float | None:
    """Cohen's kappa of two annotators' labels of the same tasks; None for fewer than two
    tasks, or a single category between them (chance agreement is then certain)."""
    if len(a) < 2 or len(set(a) | set(b)) < 2:
        return None
    from sklearn.metrics import cohen_kappa_score

    return float(cohen_kappa_score(a, b))


# -- entity spans ----------------------------------------------------------------------
def _span_agreement(
    overlap: Sequence[LabelledItem],
    pairs: Pairs,
    labels: Sequence[str],
) -> Measurement:
    from annotation_loop.text.entity_metrics import entity_metrics

    def f1(targets: PairTargets) -> tuple[float | None, dict[str, float]]:
        """Pooled F1 and per-type F1; None when neither annotator marked a span."""
        metrics = entity_metrics(
            [a or () for a, _ in targets], [b or () for _, b in targets], labels
        )
        if metrics.n_true + metrics.n_predicted == 0:
            return None, {}
        return metrics.f1, {label: scores["f1"] for label, scores in metrics.per_type.items()}

    overall, per_type = f1(list(_pooled(pairs)))
    used = {
        span.label for item in overlap for label in item.annotations for span in label.target or ()
    }
    per_class = {label: per_type[label] if label in used else None for label in labels}
    return overall, per_class, {pair: f1(targets)[0] for pair, targets in pairs.items()}


# -- boxes -----------------------------------------------------------------------------
@dataclass
class _BoxCounts:
    """Boxes of both annotators, and matched pairs of them, per label."""

    boxes: Counter[str]
    matched: Counter[str]

    @classmethod
    def of(cls, targets: PairTargets) -> _BoxCounts:
        counts = cls(Counter(), Counter())
        for a, b in targets:
            boxes_a, boxes_b = _boxes(a).boxes, _boxes(b).boxes
            counts.boxes.update(box.label for box in (*boxes_a, *boxes_b))
            counts.matched.update(
                boxes_a[i].label for i, _ in matched_boxes(boxes_a, boxes_b, AGREEMENT_IOU)
            )
        return counts

    def f1(self, label: str | None = None) -> float | None:
        """2 x matched / boxes of both: all labels, or one; None without boxes."""
        boxes = self.boxes.total() if label is None else self.boxes[label]
        matched = self.matched.total() if label is None else self.matched[label]
        return 2 * matched / boxes if boxes else None


def _boxes(target: ImageBoxes | None) -> ImageBoxes:
    return ImageBoxes(None) if target is None else target


def _box_agreement(
    overlap: Sequence[LabelledItem],
    pairs: Pairs,
    labels: Sequence[str],
) -> Measurement:
    pooled = _BoxCounts.of(list(_pooled(pairs)))
    by_pair = {pair: _BoxCounts.of(targets).f1() for pair, targets in pairs.items()}
    return pooled.f1(), {label: pooled.f1(label) for label in labels}, by_pair


# -- transcripts -----------------------------------------------------------------------
def _transcript_agreement(
    overlap: Sequence[LabelledItem],
    pairs: Pairs,
    labels: Sequence[str],
) -> Measurement:
    pooled = _word_accuracy(list(_pooled(pairs)))
    return pooled, {}, {pair: _word_accuracy(targets) for pair, targets in pairs.items()}


def _word_accuracy(targets: PairTargets) -> float | None:
    """max(0, 1 - WER) with each transcript as the reference of the other in turn, pooled:
    edits over both transcripts' words, the same whichever annotator comes first. None when
    neither said a word."""
    from annotation_loop.audio.metrics import file_text, score_transcripts

    def text(segments: Any) -> str:
        return file_text([s.text for s in sorted(segments or (), key=lambda s: s.start)])

    texts = [(text(a), text(b)) for a, b in targets]
    scores = score_transcripts(
        [a for a, _ in texts] + [b for _, b in texts], [b for _, b in texts] + [a for a, _ in texts]
    )
    return scores.word_accuracy if scores.n_examples else None


_MEASURES: dict[AgreementKind, tuple[str, str, Measure]] = {
    "labels": ("krippendorff_alpha", "cohen_kappa", _label_agreement),
    "spans": ("span_f1", "span_f1", _span_agreement),
    "boxes": ("box_f1", "box_f1", _box_agreement),
    "transcripts": ("word_accuracy", "word_accuracy", _transcript_agreement),
}
