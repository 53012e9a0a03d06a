"""Label issues: out-of-fold probabilities, their temperature, the flagging threshold, and the
review on blobs with known flips."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from annotation_loop.errors import ConfigurationError
from annotation_loop.learning.label_issues import (
    assign_folds,
    find_label_issues,
    flag_label_issues,
    flag_threshold,
    out_of_fold_probabilities,
    temperature_scaled,
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
    found = find_label_issues(features, given, N_CLASSES)
    flagged = {issue.unit for issue in found.issues}
    assert flagged <= set(FLIPPED), "every label flagged is one of the flips"
    assert len(flagged) >= len(FLIPPED) // 2
    for issue in found.issues:
        assert issue.given == given[issue.unit]
        assert issue.suggested == truth[issue.unit]
        assert issue.given_probability <= found.threshold < issue.suggested_probability
    assert [issue.given_probability for issue in found.issues] == sorted(
        issue.given_probability for issue in found.issues
    )


def test_clean_labels_give_almost_no_issues() -> None:
    # A blob's stray point deep in another blob is the model's mistake, not the label's: at
    # most 1% of the clean labels may be flagged for such points.
    flagged = sum(len(find_label_issues(*blobs(seed), N_CLASSES).issues) for seed in range(5))
    assert flagged <= 0.01 * 5 * N_CLASSES * PER_CLASS


def test_the_refit_without_the_first_flags_finds_more_flips() -> None:
    # Five blobs, a tenth of the labels flipped: the first pass's model learnt the flips as
    # noise to expect; refit without the flips it found, it expects less and finds more.
    rng = np.random.default_rng(0)
    truth = np.repeat(np.arange(5), 100)
    features = rng.normal(size=(5, 16))[truth] + rng.normal(size=(500, 16))
    flips = rng.choice(500, 50, replace=False)
    given = truth.copy()
    given[flips] = (truth[flips] + rng.integers(1, 5, size=50)) % 5
    once = flag_label_issues(out_of_fold_probabilities(features, given, 5), given)
    twice = find_label_issues(features, given, 5)
    found_once = {issue.unit for issue in once.issues}
    found_twice = {issue.unit for issue in twice.issues}
    assert found_once <= found_twice <= set(flips)
    assert len(found_twice) > len(found_once)
    assert twice.temperature < once.temperature  # fewer wrong labels to soften for


def test_out_of_fold_probabilities_are_distributions_favouring_the_true_class() -> None:
    features, truth = blobs(seed=1)
    probabilities = out_of_fold_probabilities(features, truth, N_CLASSES)
    assert probabilities.shape == (len(truth), N_CLASSES)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert np.mean(probabilities.argmax(axis=1) == truth) > 0.95


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


def test_too_few_units_per_class_is_a_clear_error():
    given = np.arange(12) % 10  # 10 classes, none with 5 units
    with pytest.raises(ConfigurationError, match="at least 5 labelled units, the largest has 2"):
        assign_folds(given, folds=5, groups=np.arange(12))


def test_fit_on_leaves_units_out_of_the_fit_but_predicts_them() -> None:
    features, truth = blobs()
    without_class_2 = truth != 2
    probabilities = out_of_fold_probabilities(features, truth, N_CLASSES, fit_on=without_class_2)
    np.testing.assert_array_equal(probabilities[:, 2], 0.0)  # no model saw class 2
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)  # yet every unit is predicted


def test_temperature_scaling_recovers_how_overconfident_the_model_is() -> None:
    # Labels drawn from softmax(z), a model that reports softmax(3 z): T comes out near 3,
    # and the scaled probabilities near the ones the labels were drawn from.
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4000, 4))
    truth = softmax(logits, axis=1)
    given = np.array([rng.choice(4, p=row) for row in truth])
    scaled, temperature = temperature_scaled(softmax(3 * logits, axis=1), given)
    assert temperature == pytest.approx(3.0, rel=0.1)
    assert np.abs(scaled - truth).max() < 0.05
    # An underconfident model is sharpened instead.
    assert temperature_scaled(softmax(logits / 2, axis=1), given)[1] == pytest.approx(0.5, rel=0.1)


def test_temperature_scaling_keeps_zeros_and_skips_units_of_unseen_classes() -> None:
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(2000, 3))
    given = np.array([rng.choice(3, p=row) for row in softmax(logits, axis=1)])
    probabilities = softmax(2 * logits, axis=1)
    probabilities[:10] = [0.5, 0.5, 0.0]  # class 2 unseen by these units' model...
    given[:10] = 2  # ...which is the class they are given
    scaled, temperature = temperature_scaled(probabilities, given)
    assert temperature == pytest.approx(2.0, rel=0.1)
    np.testing.assert_array_equal(scaled[:10, 2], 0.0)
    # With nothing to fit on, the probabilities stay as they are.
    same, one = temperature_scaled(probabilities, given, fit_on=np.zeros(2000, dtype=bool))
    assert one == 1.0
    np.testing.assert_array_equal(same, probabilities)


def test_the_threshold_keeps_the_expected_correct_labels_within_the_share() -> None:
    # Ten units the model is sure of, two of them labelled against it. Were all labels
    # right, each would fall on the unlikely class with p = 0.01: 0.1 correct labels expected
    # among the 2 flagged at t = 0.01, a share of 0.05; at t = 0.99 all 10 are, 10 expected.
    probabilities = np.array([[0.99, 0.01]] * 10)
    given = np.array([0] * 8 + [1] * 2)
    everyone = np.ones(10, dtype=bool)
    assert flag_threshold(probabilities, given, everyone, 0.05) == 0.01
    assert flag_threshold(probabilities, given, everyone, 0.04) is None
    # Only candidates count: without the two, nothing is left to flag.
    assert flag_threshold(probabilities, given, given == 0, 0.5) is None


def test_the_threshold_controls_the_share_of_correct_labels_flagged() -> None:
    # Labels drawn from the probabilities themselves (a perfectly calibrated model): hardly
    # any is flagged. Then a tenth relabelled as the model's least likely class: most of
    # those are, and of all flagged about 1 - 0.2 are wrong, as the share asks.
    rng = np.random.default_rng(2)
    everyone = np.ones(500, dtype=bool)
    clean_flags = caught = flagged = 0
    for _ in range(10):
        probabilities = rng.dirichlet([0.3] * 5, size=500)
        given = np.array([rng.choice(5, p=row) for row in probabilities])
        threshold = flag_threshold(probabilities, given, everyone, 0.2)
        if threshold is not None:
            clean_flags += int((probabilities[np.arange(500), given] <= threshold).sum())
        wrong = np.zeros(500, dtype=bool)
        wrong[rng.choice(500, 50, replace=False)] = True
        given[wrong] = probabilities[wrong].argmin(axis=1)
        threshold = flag_threshold(probabilities, given, everyone, 0.2)
        assert threshold is not None
        found = probabilities[np.arange(500), given] <= threshold
        caught += int((found & wrong).sum())
        flagged += int(found.sum())
    assert clean_flags <= 0.01 * 10 * 500
    assert caught >= 0.9 * 10 * 50
    assert 0.75 <= caught / flagged <= 0.9


def test_a_label_the_model_itself_predicts_is_never_disputed() -> None:
    # With nearly every flag allowed to be wrong, the threshold passes unit 20's given
    # probability; the model still predicts its given class, so it is not an issue.
    probabilities = np.array([[0.9, 0.1]] * 8 + [[0.1, 0.9]] * 8 + [[0.9, 0.1]] * 4 + [[0.6, 0.4]])
    given = np.array([0] * 8 + [1] * 8 + [1] * 4 + [0])
    found = flag_label_issues(probabilities, given, max_false_share=0.99)
    assert [issue.unit for issue in found.issues] == [16, 17, 18, 19]
    calibrated, _ = temperature_scaled(probabilities, given)
    assert calibrated[20, 0] <= found.threshold


def test_units_not_flaggable_or_of_an_unseen_class_are_never_flagged() -> None:
    features, truth = blobs()
    given = flipped_labels(truth)
    probabilities = out_of_fold_probabilities(features, given, N_CLASSES)
    flagged = {issue.unit for issue in flag_label_issues(probabilities, given).issues}
    kept_back = min(flagged)
    flaggable = np.ones(len(given), dtype=bool)
    flaggable[kept_back] = False
    found = flag_label_issues(probabilities, given, flaggable=flaggable)
    assert {issue.unit for issue in found.issues} == flagged - {kept_back}
    assert found.judged == len(given) - 1
    # A unit given a class its model never saw has no evidence against it.
    probabilities[kept_back] = 0.0
    probabilities[kept_back, (given[kept_back] + 1) % N_CLASSES] = 1.0
    unseen = flag_label_issues(probabilities, given)
    assert kept_back not in {issue.unit for issue in unseen.issues}
    assert unseen.judged == len(given) - 1


def test_issues_carry_the_calibrated_probabilities() -> None:
    features, truth = blobs()
    given = flipped_labels(truth)
    probabilities = out_of_fold_probabilities(features, given, N_CLASSES)
    found = flag_label_issues(probabilities, given)
    calibrated, temperature = temperature_scaled(probabilities, given)
    assert found.temperature == temperature != 1.0
    assert found.issues
    for issue in found.issues:
        assert issue.given_probability == calibrated[issue.unit, issue.given]
        assert issue.suggested_probability == calibrated[issue.unit].max()


def test_a_single_given_class_has_nothing_to_dispute() -> None:
    probabilities = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0]])
    assert flag_label_issues(probabilities, np.array([1, 1])).issues == []
    assert flag_label_issues(np.zeros((0, 3)), np.zeros(0, dtype=int)).issues == []


@pytest.mark.parametrize(
    ("probabilities", "given", "options", "message"),
    [
        (np.ones((3, 2)) / 2, np.array([0, 1]), {}, "one given class per unit"),
        (np.ones((2, 2)) / 2, np.array([0, 2]), {}, r"integers in \[0, 2\)"),
        (np.array([[0.5, np.nan]]), np.array([0]), {}, "finite"),
        (np.ones((2, 2)) / 2, np.array([0, 1]), {"max_false_share": 1.0}, r"in \(0, 1\)"),
        (np.ones((2, 2)) / 2, np.array([0, 1]), {"max_false_share": 0.0}, r"in \(0, 1\)"),
        (np.ones((2, 2)) / 2, np.array([0, 1]), {"flaggable": np.ones(3)}, "one flag per unit"),
        (np.ones((2, 2)) / 2, np.array([0, 1]), {"fit_on": np.ones(1)}, "one flag per unit"),
    ],
)
def test_flag_label_issues_rejects_bad_inputs(
    probabilities: np.ndarray, given: np.ndarray, options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        flag_label_issues(probabilities, given, **options)  # type: ignore[arg-type]
