"""The review queue's calibrated threshold on separable clusters with known flips: what it flags
on clean labels, its precision and recall on noisy ones, and that a reviewer's decision holds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError

from annotation_loop.learning.annotations import LabelledItem
from annotation_loop.learning.label_review import ReviewConfig, disputed_units, review_suggestions
from annotation_loop.task_types import Example, LabelUnits

CLASSES = ("ant", "bee", "cat", "dog", "eel")
PER_CLASS = 100
CONFIG = ReviewConfig()


def clusters(seed: int, spread: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(features, true class): five 16-d Gaussian clusters of PER_CLASS points each, their
    centres `spread` apart in each dimension (1.0: a linear model is right ~95% of the time)."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(len(CLASSES)), PER_CLASS)
    centres = spread * rng.normal(size=(len(CLASSES), 16))
    return (centres[truth] + rng.normal(size=(len(truth), 16))).astype(np.float32), truth


def flipped(truth: np.ndarray, rate: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(given class, which were flipped): `rate` of the labels moved to another class."""
    rng = np.random.default_rng(seed + 1000)
    wrong = np.zeros(len(truth), dtype=bool)
    wrong[rng.choice(len(truth), round(rate * len(truth)), replace=False)] = True
    given = truth.copy()
    given[wrong] = (truth[wrong] + rng.integers(1, len(CLASSES), size=wrong.sum())) % len(CLASSES)
    return given, wrong


def units_of(features: np.ndarray, given: np.ndarray) -> LabelUnits:
    """One unit per example, as a classification task type gives them."""
    return LabelUnits(
        features=features,
        given=given,
        example=np.arange(len(given)),
        position=np.zeros(len(given), dtype=np.int64),
        classes=CLASSES,
    )


def flagged_mask(features: np.ndarray, given: np.ndarray, confirmed: Sequence[int] = ()) -> Any:
    found = disputed_units(units_of(features, given), confirmed, CONFIG)
    assert found is not None
    mask = np.zeros(len(given), dtype=bool)
    mask[[issue.unit for issue in found.issues]] = True
    return mask, found


def test_clean_labels_are_almost_never_flagged() -> None:
    flagged = 0
    for seed in range(5):
        features, truth = clusters(seed)
        mask, _ = flagged_mask(features, truth)
        flagged += int(mask.sum())
    assert flagged <= 0.01 * 5 * len(CLASSES) * PER_CLASS


def test_ten_percent_flips_are_flagged_with_precision_and_mostly_found() -> None:
    caught = flagged = noisy = 0
    for seed in range(5):
        features, truth = clusters(seed)
        given, wrong = flipped(truth, 0.1, seed)
        mask, _ = flagged_mask(features, given)
        caught += int((mask & wrong).sum())
        flagged += int(mask.sum())
        noisy += int(wrong.sum())
    assert caught / flagged >= 0.6
    assert caught / noisy > 0.5


def test_the_threshold_is_calibrated_on_the_data_not_fixed() -> None:
    features, truth = clusters(0)
    _, clean = flagged_mask(features, truth)
    assert clean.threshold is None  # nothing beyond what the model expects
    thresholds = set()
    for rate in (0.05, 0.1, 0.2):
        given, _ = flipped(truth, rate, 0)
        _, found = flagged_mask(features, given)
        assert found.threshold is not None
        thresholds.add(found.threshold)
    assert len(thresholds) == 3
    # Blurrier clusters: a less certain model, calibrated to a softer temperature.
    blurred, _ = clusters(0, spread=0.5)
    given, _ = flipped(truth, 0.1, 0)
    _, sharp = flagged_mask(features, given)
    _, soft = flagged_mask(blurred, given)
    assert soft.temperature != sharp.temperature


def test_a_confirmed_task_is_never_flagged_even_with_a_flipped_label() -> None:
    features, truth = clusters(0)
    given, _ = flipped(truth, 0.1, 0)
    mask, _ = flagged_mask(features, given)
    confirmed = np.flatnonzero(mask)[:3]
    still, found = flagged_mask(features, given, confirmed=confirmed.tolist())
    assert not still[confirmed].any()
    assert still.any()
    assert found.judged == len(given) - len(confirmed)


def test_confirmed_tasks_still_teach_the_model() -> None:
    # Every task given "ant" confirmed: were they left out of the fit, no model would know
    # "ant", and no flip away from it could be suggested back.
    features, truth = clusters(0)
    given, wrong = flipped(truth, 0.1, 0)
    ants = np.flatnonzero(given == 0)
    found = disputed_units(units_of(features, given), ants.tolist(), CONFIG)
    assert found is not None
    back_to_ant = [i for i in found.issues if truth[i.unit] == 0 and wrong[i.unit]]
    assert sum(issue.suggested == 0 for issue in back_to_ant) > len(back_to_ant) / 2 > 0
    assert not set(ants) & {issue.unit for issue in found.issues}


class ClusterReview:
    """A task type with label review whose model features are the clusters' points."""

    name = "clusters"

    def __init__(self, features: np.ndarray) -> None:
        self.features = features

    def label_units(self, model: Any, examples: Sequence[Example], batch_size: int = 64) -> Any:
        return units_of(
            self.features[[int(e.key) for e in examples]],
            np.array([CLASSES.index(e.target) for e in examples]),
        )

    def suggest_target(self, model: Any, example: Example, suggestions: Mapping[int, str]) -> str:
        return suggestions[0]

    def result_for_target(self, target: Any, input_ref: str) -> list[dict[str, Any]]:
        return [{"choice": target, "of": input_ref}]


def item(task_id: int, label: str, decided_by: str = "single") -> LabelledItem:
    return LabelledItem(
        task_id=task_id,
        content_hash=f"h{task_id}",
        input_ref=f"s3://demo/{task_id}.png",
        target=label,
        decided_by=decided_by,  # type: ignore[arg-type]
    )


def test_review_suggestions_skip_tasks_a_reviewer_confirmed() -> None:
    features, truth = clusters(0)
    given, wrong = flipped(truth, 0.1, 0)
    labels = [CLASSES[g] for g in given]
    examples = [Example(str(i), None, label) for i, label in enumerate(labels)]
    task_type: Any = ClusterReview(features)
    items = {str(i): item(i, label) for i, label in enumerate(labels)}
    suggested = review_suggestions(task_type, None, examples, items, "m:1 review", CONFIG)
    first = {s.task_id: s for s in suggested}
    assert first and sum(wrong[list(first)]) / len(first) >= 0.6
    true_label = [first[t].result[0]["choice"] == CLASSES[truth[t]] for t in first if wrong[t]]
    assert sum(true_label) >= 0.9 * len(true_label)  # the suggestion undoes the flip
    for task_id, suggestion in first.items():
        [result] = suggestion.result
        assert result["of"] == f"s3://demo/{task_id}.png"
        assert result["choice"] != labels[task_id]
        assert suggestion.model_version == "m:1 review"
        assert 0.0 <= suggestion.score < 0.5
    confirmed = min(first)
    items[str(confirmed)] = item(confirmed, labels[confirmed], decided_by="reviewer")
    again = review_suggestions(task_type, None, examples, items, "m:2 review", CONFIG)
    assert confirmed not in {s.task_id for s in again}
    assert again


def test_too_few_labels_give_no_suggestions() -> None:
    features, truth = clusters(0)
    examples = [Example(str(i), None, CLASSES[truth[i]]) for i in (0, 1, 100)]
    items = {e.key: item(int(e.key), e.target) for e in examples}
    task_type: Any = ClusterReview(features)
    assert review_suggestions(task_type, None, examples, items, "m:1 review", CONFIG) == []


def test_the_old_fixed_confidence_setting_is_refused() -> None:
    with pytest.raises(ValidationError, match="min_confidence"):
        ReviewConfig(min_confidence=0.5)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="max_false_share"):
        ReviewConfig(max_false_share=1.0)
