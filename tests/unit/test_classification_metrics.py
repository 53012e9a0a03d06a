"""Classification metrics from scikit-learn: the same numbers as the hand-written counting
they replaced, on a realistic evaluation with a rare class the model never predicts."""

from __future__ import annotations

import random

import pytest

from annotation_loop.learning.classification_metrics import compute_metrics

LABELS = ["cat", "dog", "bird", "fish"]


def evaluation(seed: int = 0, n: int = 60) -> tuple[list[str], list[str]]:
    """(true, predicted) labels: fish is rare and never predicted, the rest right 70% of
    the time and otherwise a guess among cat, dog and bird."""
    rng = random.Random(seed)
    true = rng.choices(LABELS, weights=[5, 5, 3, 1], k=n)
    predicted = [
        rng.choice(["cat", "bird"])
        if label == "fish"
        else label
        if rng.random() < 0.7
        else rng.choice(["cat", "dog", "bird"])
        for label in true
    ]
    return true, predicted


def test_scores_match_those_pinned_before_scikit_learn() -> None:
    # Computed by the hand-written implementation this module had before scikit-learn.
    metrics = compute_metrics(*evaluation(), LABELS)
    assert metrics.confusion_matrix == [[15, 1, 0, 0], [2, 17, 3, 0], [2, 2, 14, 0], [1, 0, 3, 0]]
    assert metrics.n_examples == 60
    assert metrics.accuracy == pytest.approx(46 / 60, rel=1e-12)
    assert metrics.macro_f1 == pytest.approx((5 / 6 + 17 / 21 + 14 / 19 + 0) / 4, rel=1e-12)
    assert metrics.per_class == {
        "cat": pytest.approx({"precision": 3 / 4, "recall": 15 / 16, "f1": 5 / 6, "support": 16}),
        "dog": pytest.approx(
            {"precision": 17 / 20, "recall": 17 / 22, "f1": 17 / 21, "support": 22}
        ),
        "bird": pytest.approx({"precision": 7 / 10, "recall": 7 / 9, "f1": 14 / 19, "support": 18}),
        "fish": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 4},
    }


def test_a_label_never_predicted_nor_true_scores_zero() -> None:
    metrics = compute_metrics(["cat", "dog"], ["cat", "cat"], LABELS)
    assert metrics.per_class["fish"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert metrics.per_class["dog"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert metrics.per_class["cat"]["precision"] == 0.5


def test_nothing_scored_gives_zeros() -> None:
    # scikit-learn refuses empty input; an evaluation where no item could be read is 0.
    metrics = compute_metrics([], [], LABELS)
    assert (metrics.accuracy, metrics.macro_f1, metrics.n_examples) == (0.0, 0.0, 0)
    assert metrics.confusion_matrix == [[0] * 4 for _ in LABELS]
    assert metrics.per_class["cat"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_every_item_needs_one_prediction() -> None:
    with pytest.raises(ValueError, match="2 true labels but 1 predicted"):
        compute_metrics(["cat", "dog"], ["cat"], LABELS)
