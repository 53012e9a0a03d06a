"""A detector's validation scores: COCO mean average precision, computed by torchmetrics
(its pycocotools backend, so the numbers are COCO's own), and its per-class bar chart."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from PIL.Image import Image
from pydantic import BaseModel, ConfigDict

from annotation_loop.detection.boxes import ImageBoxes
from annotation_loop.task_types.metrics import ValidationMetrics

if TYPE_CHECKING:
    from torch import Tensor


class ClassAP(BaseModel):
    """One class's average precision."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    ap_50: float  # at IoU 0.5
    ap: float  # averaged over IoU 0.5:0.05:0.95 (COCO)
    n_true: int  # true boxes of the class


class DetectionScores(ValidationMetrics):
    """Boxes on images, scored as COCO does: a predicted box counts when it overlaps a true
    box of its class enough (IoU), precision averaged over recall and over classes."""

    map_50: float  # mean AP at IoU 0.5 (PASCAL VOC's)
    map: float  # mean AP over IoU 0.5:0.95 (COCO's primary metric)
    n_true: int  # true boxes
    n_predicted: int  # boxes predicted over the score threshold
    per_class: dict[str, ClassAP]  # classes with true boxes in the validation images


def _as_tensors(target: ImageBoxes, labels: Sequence[str], scored: bool) -> dict[str, Tensor]:
    import torch

    index = {label: i for i, label in enumerate(labels)}
    tensors: dict[str, Tensor] = {
        "boxes": torch.tensor(
            [[b.x0, b.y0, b.x1, b.y1] for b in target.boxes], dtype=torch.float32
        ).reshape(-1, 4),
        "labels": torch.tensor([index[b.label] for b in target.boxes], dtype=torch.int64),
    }
    if scored:
        tensors["scores"] = torch.tensor(
            [1.0 if b.score is None else b.score for b in target.boxes], dtype=torch.float32
        )
    return tensors


def _score(value: float) -> float:
    # torchmetrics reports -1 where there is nothing to score (no true boxes).
    return max(0.0, float(value))


def detection_scores(
    predicted: Sequence[ImageBoxes], truth: Sequence[ImageBoxes], labels: Sequence[str]
) -> DetectionScores:
    """mAP@0.5, mAP@[.5:.95] and per-class AP of `predicted` against `truth` (image by image,
    boxes in the same pixels); a predicted box without a score counts as sure (1.0)."""
    from torchmetrics.detection import MeanAveragePrecision

    preds = [_as_tensors(p, labels, scored=True) for p in predicted]
    targets = [_as_tensors(t, labels, scored=False) for t in truth]
    results = {}
    for name, thresholds in (("coco", None), ("50", [0.5])):
        metric = MeanAveragePrecision(
            iou_type="bbox", iou_thresholds=thresholds, class_metrics=True, backend="pycocotools"
        )
        metric.update(preds, targets)
        results[name] = metric.compute()
    counts: dict[str, int] = {}
    for target in truth:
        for label in target.labels:
            counts[label] = counts.get(label, 0) + 1
    per_class: dict[str, dict[str, float]] = {}
    for name, key in (("coco", "ap"), ("50", "ap_50")):
        classes = results[name]["classes"].reshape(-1).tolist()
        values = results[name]["map_per_class"].reshape(-1).tolist()
        for class_index, value in zip(classes, values, strict=True):
            label = labels[int(class_index)]
            if label in counts:
                per_class.setdefault(label, {"n_true": counts[label]})[key] = _score(value)
    return DetectionScores(
        n_examples=len(truth),
        map_50=_score(results["50"]["map"]),
        map=_score(results["coco"]["map"]),
        n_true=sum(counts.values()),
        n_predicted=sum(len(p.boxes) for p in predicted),
        per_class={
            label: ClassAP.model_validate(per_class[label])
            for label in labels
            if label in per_class
        },
    )


def plot_class_ap(scores: DetectionScores) -> Image:
    """A PNG-ready bar chart of every class's AP@0.5 and AP@[.5:.95], titled with the means."""
    # matplotlib takes a second to import: only an evaluation pays for it.
    from annotation_loop.learning.plots import new_figure, to_image

    labels = list(scores.per_class)
    figure = new_figure(max(4.0, 0.7 * len(labels) + 2.0), 4.0)
    axes = figure.add_subplot()
    positions = range(len(labels))
    width = 0.4
    ap_50 = [scores.per_class[label].ap_50 for label in labels]
    ap = [scores.per_class[label].ap for label in labels]
    axes.bar([p - width / 2 for p in positions], ap_50, width, label="AP@0.5", color="tab:blue")
    axes.bar([p + width / 2 for p in positions], ap, width, label="AP@[.5:.95]", color="tab:orange")
    axes.set_xticks(
        list(positions), [f"{label}\n({scores.per_class[label].n_true})" for label in labels]
    )
    axes.set_ylim(0, 1.1)
    axes.set_xlabel("Class (true boxes)")
    axes.set_ylabel("Average precision")
    axes.legend(loc="upper right")
    axes.set_title(
        f"mAP@0.5 {scores.map_50:.1%}, mAP@[.5:.95] {scores.map:.1%}\n"
        f"on {scores.n_true} boxes in {scores.n_examples} images "
        f"({scores.n_predicted} predicted)"
    )
    return to_image(figure)
