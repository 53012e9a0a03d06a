"""Label issues: out-of-fold probabilities and confident learning on blobs with known flips."""

from __future__ import annotations

import numpy as np
import pytest

from annotation_loop.errors import ConfigurationError
from annotation_loop.learning.label_issues import (
    LabelIssue,
    assign_folds,
    find_label_issues,
    out_of_fold_probabilities,
)

PER_CLASS = 60
N_CLASSES = 3
FLIPPED = np.array([3, 17, 70, 95, 130, 171])


def blobs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(features, true class): three well-separated 8-d Gaussian blobs of PER_CLASS points."""
    rng = np.random.default_rng(seed)
    truth = np.repeat(np.arange(N_CLASSES), PER_CLASS)
    centres = 4.0 * rng.normal(size=(N_CLASSES, 8))
    return centres[truth] + rng.normal(size=(len(truth), 8)), truth


def flipped_labels(truth: np.ndarray) -> np.ndarray:
    given = truth.copy()
    given[FLIPPED] = (truth[FLIPPED] + 1) % N_CLASSES
    return given


def test_flipped_labels_are_found_with_the_true_class_suggested() -> None:
    features, truth = blobs()
    given = flipped_labels(truth)
    issues = find_label_issues(out_of_fold_probabilities(features, given, N_CLASSES), given)
    by_unit = {issue.unit: issue for issue in issues}
    assert set(FLIPPED) <= set(by_unit)
    assert len(issues) - len(FLIPPED) <= 2
    for unit in FLIPPED:
        assert by_unit[unit].given == given[unit]
        assert by_unit[unit].suggested == truth[unit]
        assert by_unit[unit].suggested_probability >= 0.5
    assert [issue.given_probability for issue in issues] == sorted(
        issue.given_probability for issue in issues
    )


def test_clean_labels_give_almost_no_issues() -> None:
    features, truth = blobs()
    assert len(find_label_issues(out_of_fold_probabilities(features, truth, N_CLASSES), truth)) <= 1


def test_out_of_fold_probabilities_are_distributions_favouring_the_true_class() -> None:
    features, truth = blobs(seed=1)
    probabilities = out_of_fold_probabilities(features, truth, N_CLASSES)
    assert probabilities.shape == (len(truth), N_CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert np.mean(probabilities.argmax(axis=1) == truth) > 0.95


def test_issues_follow_the_confident_learning_rule() -> None:
    probabilities = np.array(
        [
            [0.9, 0.1],  # given 0, sure of it
            [0.7, 0.3],  # given 0, less sure: sets class 0's threshold to 0.8
            [0.6, 0.4],  # given 1 but class 0 is at 0.6 < 0.8: not confident, no issue
            [0.85, 0.15],  # given 1, class 0 above its threshold: an issue
            [0.2, 0.8],  # given 1, right
        ]
    )
    given = np.array([0, 0, 1, 1, 1])
    assert find_label_issues(probabilities, given) == [
        LabelIssue(unit=3, given=1, suggested=0, given_probability=0.15, suggested_probability=0.85)
    ]
    # The same unit is not reported when the suggestion must be surer than it is.
    assert find_label_issues(probabilities, given, min_confidence=0.9) == []


def test_issues_are_sorted_least_self_confident_first() -> None:
    probabilities = np.array([[0.6, 0.4], [0.7, 0.3], [0.95, 0.05], [0.2, 0.8], [0.1, 0.9]])
    given = np.array([0, 1, 1, 1, 1])
    assert [issue.unit for issue in find_label_issues(probabilities, given)] == [2, 1]


def test_a_class_missing_from_a_training_fold_gets_probability_zero() -> None:
    features, truth = blobs()
    # Class 2 has a single unit and a fourth class none: whichever model judges that unit was
    # fit without class 2, and no model ever saw class 3.
    keep = np.concatenate([np.arange(2 * PER_CLASS), [2 * PER_CLASS]])
    probabilities = out_of_fold_probabilities(features[keep], truth[keep], n_classes=4)
    assert probabilities[-1, 2] == 0.0
    np.testing.assert_array_equal(probabilities[:, 3], 0.0)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)


def test_a_single_class_training_fold_predicts_that_class() -> None:
    features, truth = blobs()
    keep = np.concatenate([np.arange(PER_CLASS), [PER_CLASS]])
    probabilities = out_of_fold_probabilities(features[keep], truth[keep], N_CLASSES)
    np.testing.assert_array_equal(probabilities[-1], [1.0, 0.0, 0.0])


def test_groups_keep_a_tasks_units_in_one_fold() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(np.arange(30), 4)  # 30 tasks of 4 words
    given = rng.integers(0, 3, size=len(groups))
    folds = assign_folds(given, folds=5, seed=0, groups=groups)
    for group in np.unique(groups):
        assert len(set(folds[groups == group])) == 1
    assert set(folds) == set(range(5))
    # Without groups, a task's words are spread over folds.
    ungrouped = assign_folds(given, folds=5, seed=0)
    assert any(len(set(ungrouped[groups == group])) > 1 for group in np.unique(groups))


def test_fold_assignment_is_stratified_and_seeded() -> None:
    _, truth = blobs()
    folds = assign_folds(truth, folds=5, seed=0)
    for label in range(N_CLASSES):
        assert np.bincount(folds[truth == label], minlength=5).tolist() == [12] * 5
    np.testing.assert_array_equal(folds, assign_folds(truth, folds=5, seed=0))
    assert not np.array_equal(folds, assign_folds(truth, folds=5, seed=1))


def test_groups_stop_a_model_from_judging_a_unit_by_its_own_tasks_copies() -> None:
    # 60 tasks of 4 near-identical units each, at random places with random labels: the
    # label can only be learnt from the task's other units, never from the rest.
    rng = np.random.default_rng(1)
    groups = np.repeat(np.arange(60), 4)
    given = rng.integers(0, 2, size=60)[groups]
    features = rng.normal(size=(60, 40))[groups] + 0.01 * rng.normal(size=(len(groups), 40))

    def accuracy(probabilities: np.ndarray) -> float:
        return float(np.mean(probabilities.argmax(axis=1) == given))

    assert accuracy(out_of_fold_probabilities(features, given, 2)) > 0.9  # leaked
    assert accuracy(out_of_fold_probabilities(features, given, 2, groups=groups)) < 0.75


@pytest.mark.parametrize(
    ("features", "given", "options", "message"),
    [
        (np.ones((4, 2)), np.array([0, 1, 0, 1]), {}, "at least 5 labelled units, found 4"),
        (
            np.ones((6, 2)),
            np.array([0, 1, 0, 1, 0, 1]),
            {"groups": np.array([0, 0, 1, 1, 2, 2])},
            "at least 5 labelled tasks, found 3",
        ),
        (np.ones((10, 2)), np.zeros(10, dtype=int), {}, "at least two classes"),
        (np.ones((10, 2)), np.arange(10) % 2, {"groups": np.arange(9)}, "one group per unit"),
        (np.ones((10, 2)), np.arange(9) % 2, {}, "one given class per unit"),
        (np.ones((10, 2)), np.arange(10) % 4, {}, r"integers in \[0, 3\)"),
        (np.full((10, 2), np.nan), np.arange(10) % 2, {}, "finite"),
        (np.ones((10, 2)), np.arange(10) % 2, {"folds": 1}, "at least 2 folds"),
    ],
)
def test_out_of_fold_probabilities_reject_bad_inputs(
    features: np.ndarray, given: np.ndarray, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        out_of_fold_probabilities(features, given, 3, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("probabilities", "given", "min_confidence", "message"),
    [
        (np.ones((3, 2)) / 2, np.array([0, 1]), 0.5, "one given class per unit"),
        (np.ones((2, 2)) / 2, np.array([0, 2]), 0.5, r"integers in \[0, 2\)"),
        (np.array([[0.5, np.nan]]), np.array([0]), 0.5, "finite"),
        (np.ones((2, 2)) / 2, np.array([0, 1]), 1.5, "minimum confidence"),
    ],
)
def test_find_label_issues_rejects_bad_inputs(
    probabilities: np.ndarray, given: np.ndarray, min_confidence: float, message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        find_label_issues(probabilities, given, min_confidence)


def test_too_few_units_per_class_is_a_clear_error():
    given = np.arange(12) % 10  # 10 classes, none with 5 units
    with pytest.raises(ConfigurationError, match="at least 5 labelled units, the largest has 2"):
        assign_folds(given, folds=5, groups=np.arange(12))


def noisy_predictions(seed: int = 0, n: int = 300, k: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, given class): a softmax of noisy logits favouring each unit's true
    class, as an out-of-fold model gives, and given classes of which about 10% are wrong."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, k, size=n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), truth] += 2.0
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    given = truth.copy()
    flip = rng.random(n) < 0.1
    given[flip] = (truth[flip] + rng.integers(1, k, size=flip.sum())) % k
    return probabilities, given


def test_issues_match_those_pinned_before_cleanlab() -> None:
    # (unit, given, suggested), least self-confident first, as the hand-written confident
    # learning this module had before cleanlab found them.
    probabilities, given = noisy_predictions()
    issues = find_label_issues(probabilities, given)
    assert [(issue.unit, issue.given, issue.suggested) for issue in issues] == [
        (128, 1, 3), (232, 1, 3), (71, 0, 1), (4, 2, 1), (246, 3, 0), (290, 1, 0), (187, 0, 3),
        (56, 0, 1), (18, 2, 0), (208, 3, 0), (151, 0, 1), (59, 3, 2), (205, 2, 3), (228, 0, 2),
        (241, 3, 1), (64, 3, 0), (28, 3, 0), (226, 1, 0), (168, 1, 0),
    ]  # fmt: skip
    for issue in issues:
        assert issue.given_probability == probabilities[issue.unit, issue.given]
        assert issue.suggested_probability == probabilities[issue.unit].max()


def test_a_label_the_model_itself_predicts_is_never_disputed() -> None:
    # Unit 2's class 1 clears class 1's threshold (0.45) but the model still favours its
    # given class 0. The paper's rule alone, which this module followed before cleanlab,
    # flagged it whenever the minimum confidence was at most 0.45; cleanlab does not.
    probabilities = np.array([[0.95, 0.05], [0.95, 0.05], [0.55, 0.45], [0.2, 0.8], [0.9, 0.1]])
    given = np.array([0, 0, 0, 1, 1])
    assert [issue.unit for issue in find_label_issues(probabilities, given, 0.0)] == [4]


def test_the_suggestion_is_the_models_most_probable_class() -> None:
    # Unit 2 is flagged because class 1 clears its threshold (0.43), yet the model's most
    # probable class is 2 (below its threshold, 0.85): cleanlab's predicted label. Before
    # cleanlab the suggestion was the most probable class above its threshold (1, at 0.44,
    # under the minimum confidence: no issue).
    probabilities = np.array(
        [
            [0.9, 0.05, 0.05],
            [0.9, 0.05, 0.05],
            [0.01, 0.44, 0.55],
            [0.1, 0.8, 0.1],
            [0.1, 0.06, 0.84],
            [0.05, 0.05, 0.9],
            [0.1, 0.1, 0.8],
        ]
    )
    given = np.array([0, 0, 0, 1, 1, 2, 2])
    assert find_label_issues(probabilities, given) == [
        LabelIssue(unit=2, given=0, suggested=2, given_probability=0.01, suggested_probability=0.55)
    ]


def test_a_single_given_class_has_nothing_to_dispute() -> None:
    probabilities = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]])
    assert find_label_issues(probabilities, np.array([1, 1])) == []
    assert find_label_issues(np.zeros((0, 3)), np.zeros(0, dtype=int)) == []
