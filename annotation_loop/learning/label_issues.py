"""Labels that are probably wrong: out-of-fold predictions, calibrated, under a threshold
set by the data rather than a constant.

Every labelled unit (an image, a text, one word of an NER text, one box) has the model's
features and a given class. A logistic regression on the unit-length features, fit on the
other folds, gives each unit class probabilities its own label never influenced. One
temperature T, fit to the given labels by likelihood, calibrates them (softmax(log p / T)).
A unit is flagged when the calibrated probability of its given class is at or below a
threshold t and the model predicts another class, least likely first. t is the largest
value for which, were every label right, the correct labels expected at or below it are at
most `max_false_share` of the labels found there: each label would be drawn from its unit's
calibrated distribution, so it falls on a class of probability <= t with probability
sum_c p_c [p_c <= t]. That is Benjamini and Hochberg's false discovery rate control with
the calibrated model as the null: on clean labels the two counts agree at every t and
nothing is flagged; wrong labels pile up below t beyond what the model expects.

A model fit on wrong labels learns to expect some, and so does its calibration: one pass
finds only the clearest errors. So the review runs twice, the second time with the folds'
models and T fit without the units the first pass flagged (they are still judged); its
flags are the review's.

Measured with benchmarks/review_precision.py on the demos, noise from
`annotation_loop.dev.label_noise` (another label, uniformly), `max_false_share` 0.2
(figures: share of tasks flagged on clean labels; precision / recall at 10% noise):

- image, frozen EfficientNet-Lite0 features as the step sees them, 10 draws of 200 tasks:
  0.4% of clean tasks flagged; 0.92 / 0.44 (5% noise: 0.86 / 0.49). 3 draws of 1000:
  0.3%; 0.95 / 0.68 (5%: 0.90 / 0.68). Before (standardised features, C=1, cleanlab's
  confident learning, min_confidence 0.5): 6.5-11% of 200 clean tasks flagged (issue 19's
  20 of 200).
- text, MiniLM fine-tuned on the noisy labels as the step sees it, 250 tasks: 1 clean task
  flagged, 2 at 10% noise (1 right). Fine-tuning memorises the labels: on the training
  split's features the out-of-fold model agreed with 99% of the given labels, wrong ones
  included, so the review can hardly dispute any; its calibration then flags next to
  nothing rather than correct labels. The pretrained encoder's features are no help either
  (~70% out-of-fold accuracy): 1000 tasks, 1 flagged at 10% noise (right), none clean.
  Nor are cross-fitted fine-tunes (each fold judged by a MiniLM fine-tuned without it):
  63% / 70% out-of-fold accuracy at 250 / 1000 tasks, nothing flagged at 10% noise. The
  data set is the limit: on 2000 clean texts the pretrained judge is at least 95% sure of
  3.5% of them, and right on 96% of those, so at 10% noise even a threshold placed there
  by hand would be right about 70% of the time and find 3% of the errors.
- NER, the tagger fine-tuned as the step sees it, 250 WNUT-16 tweets (`--dataset ner`): 4
  clean tweets flagged (1.6%), each for an entity word the judge calls "O" with
  probability below 0.001; at 10% noise (8 tweets with a changed entity type) 1 flagged,
  wrongly. With ~300 entity words among 5800 the judge is 53% right on entity words.
  Neither class-balanced weights (all 8 errors found, but 57 clean tweets flagged) nor a
  per-class bias in the calibration (Alexandari et al., 2020: 4 clean tweets still) helps.

Measured on the image demo (3 draws each of 200 and 1000 tasks) before choosing:
- features: standardised, as before, clean labels flagged 2.5% / 0.8% (200 / 1000 tasks),
  precision 0.43 / 0.80 at 10%; unit length 0.3% / 0.1%, 0.95 / 0.97. C: 1 lost 7-10
  points of out-of-fold accuracy at 200-500 tasks; 100 changed little over 10.
- passes: one pass, precision 0.93-1.0 and recall 0.26-0.47 over 200-1000 tasks; two,
  0.84-0.99 and 0.53-0.72; three, 0.80-0.90 and 0.53-0.85.
- cleanlab: its confident-learning filter on top of this threshold only lowered recall
  (0.42 to 0.37 at 200 tasks, one pass); of its label quality scores, self-confidence (the
  given class's probability, used here) ranked the wrong labels best (average precision
  0.89 at 200 tasks, against 0.78 and 0.85). So cleanlab is no longer used here.
- a fixed threshold on the raw probability (given class < 0.01, standardised features):
  4.3% of 200 clean tasks flagged.
- a mixture of the model and uniform noise, fit jointly (T and the noise rate), found more
  (recall 0.70-0.96, precision 0.64-0.83) but assumes errors spread evenly over the other
  classes, as the benchmark makes them and annotators do not, and with two classes cannot
  tell noise from an unsure model: it flagged 7% of the clean text tasks.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import Normalizer

from annotation_loop.errors import ConfigurationError

# The out-of-fold model's inverse regularisation strength, on unit-length features (see
# the module docstring for C=1 and C=100).
C = 10.0
# Temperatures tried: from 20 times sharper to 20 times softer than the model.
LOG_TEMPERATURE_BOUNDS = (-3.0, 3.0)


@dataclass(frozen=True)
class LabelIssue:
    unit: int  # index into the units
    given: int
    suggested: int
    given_probability: float  # calibrated
    suggested_probability: float


@dataclass(frozen=True)
class LabelIssues:
    """The flagged units, least likely correct first, and how they were chosen."""

    issues: list[LabelIssue]
    temperature: float  # the calibration of the out-of-fold probabilities
    # Calibrated given-class probability at or below which a label is flagged; None: none is.
    threshold: float | None
    judged: int  # units that could be flagged


def _validated_labels(given: np.ndarray, n_units: int, n_classes: int) -> np.ndarray:
    labels = np.asarray(given)
    if labels.shape != (n_units,):
        raise ConfigurationError(
            f"Expected one given class per unit ({n_units}), not shape {labels.shape}"
        )
    if labels.size and (
        not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() >= n_classes
    ):
        raise ConfigurationError(f"Given classes must be integers in [0, {n_classes})")
    return labels


def assign_folds(
    given: np.ndarray, folds: int = 5, seed: int = 0, groups: np.ndarray | None = None
) -> np.ndarray:
    """Each unit's fold (0 .. folds-1), stratified by class; a group's units share a fold."""
    labels = np.asarray(given)
    if len(np.unique(labels)) < 2:
        raise ConfigurationError(
            "Label issues need labels of at least two classes: label more examples first"
        )
    if groups is not None and len(groups) != len(labels):
        raise ConfigurationError(f"Expected one group per unit ({len(labels)}), not {len(groups)}")
    parts = "units" if groups is None else "tasks"
    n_parts = len(labels) if groups is None else len(np.unique(groups))
    if n_parts < folds:
        raise ConfigurationError(
            f"Label issues need at least {folds} labelled {parts}, found {n_parts}: "
            f"label more or use fewer folds"
        )
    largest = int(np.unique(labels, return_counts=True)[1].max())
    if largest < folds:  # scikit-learn's stratified splitters refuse this
        raise ConfigurationError(
            f"Label issues need a class with at least {folds} labelled units, the largest has "
            f"{largest}: label more or use fewer folds"
        )
    if groups is None:
        splitter: StratifiedKFold | StratifiedGroupKFold = StratifiedKFold(
            folds, shuffle=True, random_state=seed
        )
    else:
        splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=seed)
    fold_of = np.empty(len(labels), dtype=np.int64)
    with warnings.catch_warnings():
        # Rare classes are normal early on; their folds are handled by the caller.
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        for fold, (_, held_out) in enumerate(splitter.split(labels, labels, groups)):
            fold_of[held_out] = fold
    return fold_of


def _fit_predict(
    train_features: np.ndarray, train_labels: np.ndarray, features: np.ndarray, n_classes: int
) -> np.ndarray:
    """(units, n_classes) probabilities from a model fit on the training units; classes the
    training units lack get probability 0."""
    probabilities = np.zeros((len(features), n_classes))
    classes = np.unique(train_labels)
    if not len(classes):  # every training unit was left out: no class is seen
        return probabilities
    if len(classes) == 1:
        # Nothing to tell apart: the one class seen is all the model could say.
        probabilities[:, classes[0]] = 1.0
        return probabilities
    model = make_pipeline(Normalizer(), LogisticRegression(C=C, max_iter=1000))
    model.fit(train_features, train_labels)
    probabilities[:, model.classes_] = model.predict_proba(features)
    return probabilities


def out_of_fold_probabilities(
    features: np.ndarray,
    given: np.ndarray,
    n_classes: int,
    folds: int = 5,
    seed: int = 0,
    groups: np.ndarray | None = None,
    fit_on: np.ndarray | None = None,
) -> np.ndarray:
    """(units, n_classes): each unit's class probabilities from a logistic regression (on
    unit-length features) fit on the folds it is not in.

    `groups` (e.g. the task each NER word comes from) keeps a group's units in one fold, so
    a unit is never judged by a model that saw its own task. Only the units `fit_on` (a
    boolean mask; default all) are fit on; every unit is predicted.
    """
    vectors = np.asarray(features, dtype=np.float64)
    if vectors.ndim != 2 or not np.isfinite(vectors).all():
        raise ConfigurationError(
            f"Features must be a finite (units, features) array, not shape {vectors.shape}"
        )
    labels = _validated_labels(given, len(vectors), n_classes)
    if folds < 2:
        raise ConfigurationError(f"Out-of-fold predictions need at least 2 folds, not {folds}")
    fold_of = assign_folds(labels, folds, seed, groups)
    fitted = _mask(fit_on, len(vectors))
    probabilities = np.zeros((len(vectors), n_classes))
    for fold in range(folds):
        held_out = fold_of == fold
        training = ~held_out & fitted
        probabilities[held_out] = _fit_predict(
            vectors[training], labels[training], vectors[held_out], n_classes
        )
    return probabilities


def _mask(mask: np.ndarray | None, n_units: int) -> np.ndarray:
    """A boolean mask over the units; None: all of them."""
    if mask is None:
        return np.ones(n_units, dtype=bool)
    chosen = np.asarray(mask, dtype=bool)
    if chosen.shape != (n_units,):
        raise ConfigurationError(
            f"Expected a mask of one flag per unit ({n_units}), not {chosen.shape}"
        )
    return chosen


def _validated_probabilities(probabilities: np.ndarray) -> np.ndarray:
    rows = np.asarray(probabilities, dtype=np.float64)
    if rows.ndim != 2 or not np.isfinite(rows).all():
        raise ConfigurationError(
            f"Probabilities must be a finite (units, classes) array, not shape {rows.shape}"
        )
    return rows


def temperature_scaled(
    probabilities: np.ndarray, given: np.ndarray, fit_on: np.ndarray | None = None
) -> tuple[np.ndarray, float]:
    """(probabilities, temperature T): softmax(log p / T), with the T that makes the given
    classes of the units `fit_on` (a boolean mask; default all) most likely (Guo et al.,
    "On Calibration of Modern Neural Networks", 2017). Out-of-fold probabilities are held
    out, as the fit needs. A probability of 0 stays 0; T is 1 with nothing to fit on."""
    rows = _validated_probabilities(probabilities)
    labels = _validated_labels(given, *rows.shape)
    chosen = _mask(fit_on, len(rows)).copy()
    with np.errstate(divide="ignore"):  # log 0 = -inf: a class the fold's model never saw
        logs = np.log(rows)
    given_logs = logs[np.arange(len(rows)), labels]
    chosen &= np.isfinite(given_logs)  # an unseen given class is infinitely unlikely at any T
    if not chosen.any():
        return rows, 1.0
    fit_logs, fit_labels = logs[chosen], labels[chosen]

    def negative_log_likelihood(log_temperature: float) -> float:
        scaled = log_softmax(fit_logs / np.exp(log_temperature), axis=1)
        return float(-scaled[np.arange(len(fit_labels)), fit_labels].sum())

    fit = minimize_scalar(negative_log_likelihood, bounds=LOG_TEMPERATURE_BOUNDS, method="bounded")
    temperature = float(np.exp(fit.x))
    return np.exp(log_softmax(logs / temperature, axis=1)), temperature


def flag_threshold(
    probabilities: np.ndarray, given: np.ndarray, candidates: np.ndarray, max_false_share: float
) -> float | None:
    """The largest given-class probability t such that, among the `candidates` (a boolean
    mask) whose given class has probability <= t, the calibrated model expects at most
    `max_false_share` to be correct after all (Benjamini and Hochberg, "Controlling the
    False Discovery Rate", 1995; see the module docstring); None when no t qualifies."""
    if not 0.0 < max_false_share < 1.0:
        raise ConfigurationError(
            f"The share of flags allowed to be wrong must be in (0, 1), not {max_false_share}"
        )
    rows = _validated_probabilities(probabilities)
    labels = _validated_labels(given, *rows.shape)
    chosen = _mask(candidates, len(rows))
    rows = rows[chosen]
    scores = np.sort(rows[np.arange(len(rows)), labels[chosen]])
    if not len(scores):
        return None
    every = np.sort(rows, axis=None)
    # Per candidate threshold t (each score): correct labels expected at or below t, and
    # labels found there.
    expected = np.cumsum(every)[np.searchsorted(every, scores, side="right") - 1]
    flagged = np.searchsorted(scores, scores, side="right")
    allowed = np.flatnonzero(expected <= max_false_share * flagged)
    return float(scores[allowed[-1]]) if len(allowed) else None


def flag_label_issues(
    probabilities: np.ndarray,
    given: np.ndarray,
    max_false_share: float = 0.2,
    flaggable: np.ndarray | None = None,
    fit_on: np.ndarray | None = None,
) -> LabelIssues:
    """Units whose given class is probably wrong, least likely correct first: out-of-fold
    `probabilities` are temperature-scaled on the units `fit_on`, then the units
    `flaggable` (boolean masks; default all) whose given class has a calibrated probability
    at or below `flag_threshold` are issues, unless the model predicts that class itself.
    A unit whose given class its fold's model never saw (probability 0) has no evidence
    against it and is never flagged. The suggestion is the model's most probable class.
    """
    rows = _validated_probabilities(probabilities)
    n_units, n_classes = rows.shape
    labels = _validated_labels(given, n_units, n_classes)
    everyone = np.arange(n_units)
    calibrated, temperature = temperature_scaled(rows, labels, fit_on)
    given_probability = calibrated[everyone, labels]
    judged = _mask(flaggable, n_units) & (rows[everyone, labels] > 0)
    threshold = flag_threshold(calibrated, labels, judged, max_false_share)
    suggested = calibrated.argmax(axis=1)
    if threshold is None:
        flagged = np.empty(0, dtype=np.int64)
    else:
        flagged = np.flatnonzero(judged & (given_probability <= threshold) & (suggested != labels))
    issues = [
        LabelIssue(
            unit=int(unit),
            given=int(labels[unit]),
            suggested=int(suggested[unit]),
            given_probability=float(given_probability[unit]),
            suggested_probability=float(calibrated[unit, suggested[unit]]),
        )
        for unit in flagged[np.argsort(given_probability[flagged], kind="stable")]
    ]
    return LabelIssues(issues, temperature, threshold, int(judged.sum()))


def find_label_issues(
    features: np.ndarray,
    given: np.ndarray,
    n_classes: int,
    folds: int = 5,
    seed: int = 0,
    groups: np.ndarray | None = None,
    max_false_share: float = 0.2,
    flaggable: np.ndarray | None = None,
) -> LabelIssues:
    """The review: `flag_label_issues` on out-of-fold probabilities, then again on those of
    models refit without the units flagged (see the module docstring); the arguments are
    those of `out_of_fold_probabilities` and `flag_label_issues`."""
    labels = np.asarray(given)
    probabilities = out_of_fold_probabilities(features, labels, n_classes, folds, seed, groups)
    first = flag_label_issues(probabilities, labels, max_false_share, flaggable)
    pruned = np.ones(len(labels), dtype=bool)
    pruned[[issue.unit for issue in first.issues]] = False
    if pruned.all():
        return first
    probabilities = out_of_fold_probabilities(
        features, labels, n_classes, folds, seed, groups, fit_on=pruned
    )
    return flag_label_issues(probabilities, labels, max_false_share, flaggable, fit_on=pruned)
