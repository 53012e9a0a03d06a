"""Detection scores through torchmetrics (pycocotools): cases checkable by hand."""

from __future__ import annotations

import pytest

from annotation_loop.detection.boxes import Box, ImageBoxes
from annotation_loop.detection.metrics import DetectionScores, detection_scores, plot_class_ap

LABELS = ("cat", "dog")
TRUTH = [
    ImageBoxes((100, 80), (Box("cat", 10, 10, 50, 50), Box("dog", 60, 20, 90, 70))),
    ImageBoxes((100, 80), (Box("cat", 0, 0, 40, 40),)),
]


def scored(target: ImageBoxes, dx: float = 0.0) -> ImageBoxes:
    return ImageBoxes(
        target.size,
        tuple(Box(b.label, b.x0 + dx, b.y0, b.x1 + dx, b.y1, 0.9) for b in target.boxes),
    )


def test_a_perfect_prediction_scores_one():
    scores = detection_scores([scored(t) for t in TRUTH], TRUTH, LABELS)
    assert scores.map_50 == 1.0 and scores.map == 1.0
    assert (scores.n_true, scores.n_predicted, scores.n_examples) == (3, 3, 2)
    assert scores.per_class["cat"].ap == 1.0 and scores.per_class["cat"].n_true == 2
    assert scores.score("map_50") == 1.0
    assert DetectionScores.score_names() == ("map_50", "map")


def test_a_shifted_box_scores_lower_at_strict_overlaps_first():
    # Shifted by 10 px: IoU 30/50 = 0.6 for the 40 px cats, 20/40 = 0.5 for the dog.
    scores = detection_scores([scored(t, dx=10) for t in TRUTH], TRUTH, LABELS)
    assert scores.map_50 == 1.0, "every box still overlaps its truth by IoU >= 0.5"
    assert scores.map == pytest.approx((0.2 + 0.1) / 2, abs=0.01)  # 2 of 10 and 1 of 10 IoUs


def test_a_wrong_class_and_a_missed_box_lose_their_class_precision():
    predicted = [
        ImageBoxes((100, 80), (Box("cat", 10, 10, 50, 50, 0.9), Box("cat", 60, 20, 90, 70, 0.8))),
        ImageBoxes((100, 80), ()),
    ]
    scores = detection_scores(predicted, TRUTH, LABELS)
    assert scores.per_class["dog"].ap_50 == 0.0
    # Cats: the first found (precision 1 at recall 0.5), the second missed: AP 0.5.
    assert scores.per_class["cat"].ap_50 == pytest.approx(0.5, abs=0.01)
    assert scores.map_50 == pytest.approx(0.25, abs=0.01)
    image = plot_class_ap(scores)
    assert image.size[0] > 100 and image.size[1] > 100
