"""Labels that are probably wrong, found by confident learning on out-of-fold predictions.

Every labelled unit (an image, a text, or one word of an NER text) has an embedding and a
given class. A logistic regression fit on the other folds gives each unit class
probabilities its own label never influenced. Confident learning (Northcutt, Jiang and
Chuang, "Confident Learning: Estimating Uncertainty in Dataset Labels", JAIR 2021), as
cleanlab implements it, then sets one threshold per class, t_j = the mean probability of
class j over the units given j, and counts a unit as confidently belonging to class j when
p_j >= t_j. A unit is a label issue when the class it is counted under (the model's most
probable class if it clears several thresholds) is not its given class, and the model does
not predict the given class either. Issues are listed least self-confident first (lowest
probability of the given class), the order in which a reviewer should see them.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import cleanlab.filter
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from annotation_loop.errors import ConfigurationError


@dataclass(frozen=True)
class LabelIssue:
    unit: int  # index into the units
    given: int
    suggested: int
    given_probability: float
    suggested_probability: float


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
    if len(classes) == 1:
        # Nothing to tell apart: the one class seen is all the model could say.
        probabilities[:, classes[0]] = 1.0
        return probabilities
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
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
) -> np.ndarray:
    """(units, n_classes): each unit's class probabilities from a logistic regression (on
    standardised features) fit on the folds it is not in.

    `groups` (e.g. the task each NER word comes from) keeps a group's units in one fold, so
    a unit is never judged by a model that saw its own task.
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
    probabilities = np.zeros((len(vectors), n_classes))
    for fold in range(folds):
        held_out = fold_of == fold
        probabilities[held_out] = _fit_predict(
            vectors[~held_out], labels[~held_out], vectors[held_out], n_classes
        )
    return probabilities


def find_label_issues(
    probabilities: np.ndarray, given: np.ndarray, min_confidence: float = 0.5
) -> list[LabelIssue]:
    """Units whose given class is probably wrong, least self-confident first.

    A unit is an issue when cleanlab's confident learning (`filter_by="confident_learning"`,
    see the module docstring) flags it and the model's most probable class, the suggestion,
    has p >= `min_confidence`. No unit is counted under a class no unit is given (cleanlab
    sets its threshold above 1), and out-of-fold probabilities give such a class 0.
    """
    rows = np.asarray(probabilities, dtype=np.float64)
    if rows.ndim != 2 or not np.isfinite(rows).all():
        raise ConfigurationError(
            f"Probabilities must be a finite (units, classes) array, not shape {rows.shape}"
        )
    if not 0.0 <= min_confidence <= 1.0:
        raise ConfigurationError(f"The minimum confidence must be in [0, 1], not {min_confidence}")
    n_units, n_classes = rows.shape
    labels = _validated_labels(given, n_units, n_classes)
    if len(np.unique(labels)) < 2:
        # Nothing to dispute a label with (and cleanlab refuses a single class).
        return []

    # Ranked by self-confidence, the given class's probability, lowest first. Unlike the
    # paper's rule alone, cleanlab counts p_j within 1e-6 of t_j as confident and never
    # disputes a label the model itself predicts.
    flagged = cleanlab.filter.find_label_issues(
        labels,
        rows,
        filter_by="confident_learning",
        return_indices_ranked_by="self_confidence",
        n_jobs=1,  # no worker processes inside a pipeline step
    )
    # The suggestion is the model's prediction, as cleanlab's `CleanLearning` reports it.
    suggested = rows.argmax(axis=1)
    return [
        LabelIssue(
            unit=int(unit),
            given=int(labels[unit]),
            suggested=int(suggested[unit]),
            given_probability=float(rows[unit, labels[unit]]),
            suggested_probability=float(rows[unit, suggested[unit]]),
        )
        for unit in flagged
        if rows[unit, suggested[unit]] >= min_confidence
    ]
