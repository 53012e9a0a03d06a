"""The label training uses where several annotators labelled a task, by the chosen method,
and how reliable each annotator is.

"majority" is what the merge already decided (`consensus.majority_vote`). "dawid_skene"
fits crowd-kit's Dawid-Skene model to every task with several annotations: each
annotator's confusion matrix is estimated jointly with the tasks' labels, so a reliable
annotator outweighs an unreliable one, and a split with no majority still gets a label.
Reviewers' decisions are never changed; they enter the fit as known labels, which calibrate
the annotators' confusion matrices.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pandas as pd

from annotation_loop.errors import ConfigurationError
from annotation_loop.quality.consensus import ConsensusMethod, reference_without
from annotation_loop.task_types.choices import SingleChoiceTaskType

if TYPE_CHECKING:
    from annotation_loop.learning.annotations import AnnotationSnapshot


@dataclass(frozen=True)
class AnnotatorReliability:
    """How one annotator fares on the tasks they share with others."""

    tasks: int  # tasks they labelled with at least one other annotator
    judged: int  # of them, those where the others (or a reviewer) decided a label
    agreed: int  # of those, where their label is the one decided without them
    # Dawid-Skene's estimate of the share of tasks they label right (None for "majority").
    estimated_accuracy: float | None = None

    @property
    def agreement(self) -> float | None:
        """The share of their judged labels that agree with the decision made without them
        (`consensus.reference_without`); None when none could be judged."""
        return self.agreed / self.judged if self.judged else None

    def as_metadata(self) -> dict[str, int | float]:
        """The figures for a model version's metadata (only those that exist)."""
        metadata: dict[str, int | float] = {"tasks": self.tasks, "judged": self.judged}
        if self.agreement is not None:
            metadata["agreement"] = self.agreement
        if self.estimated_accuracy is not None:
            metadata["estimated_accuracy"] = self.estimated_accuracy
        return metadata


def aggregate(snapshot: AnnotationSnapshot, method: ConsensusMethod) -> AnnotationSnapshot:
    """`snapshot` with the training label of each task with several annotations decided by
    `method`: unchanged for "majority"; for "dawid_skene", the model's estimate, which also
    decides the tasks the majority left undecided. Raises `ConfigurationError` for
    "dawid_skene" on a task type whose targets are not one label."""
    if method == "majority":
        return snapshot
    estimates = _fit(snapshot).labels
    items = dict(snapshot.items)
    undecided = dict(snapshot.undecided)
    for item in snapshot.shared_items():
        if item.confirmed or item.task_id not in estimates.index:
            continue
        undecided.pop(item.task_id, None)
        items[item.task_id] = dataclasses.replace(
            item, target=str(estimates[item.task_id]), decided_by="dawid_skene"
        )
    return dataclasses.replace(snapshot, items=items, undecided=undecided)


def annotator_reliability(
    snapshot: AnnotationSnapshot, method: ConsensusMethod
) -> dict[str, AnnotatorReliability]:
    """Each annotator of a task shared with others (by Label Studio user id): how often
    they agree with the others' decision, and for "dawid_skene" the model's estimate of
    their accuracy."""
    tasks: dict[str, int] = {}
    judged: dict[str, int] = {}
    agreed: dict[str, int] = {}
    for item in snapshot.shared_items():
        for label in item.annotations:
            who = label.annotator
            tasks[who] = tasks.get(who, 0) + 1
            reference = reference_without(item.annotations, who)
            if reference.decided_by != "none":
                judged[who] = judged.get(who, 0) + 1
                agreed[who] = agreed.get(who, 0) + (label.target == reference.target)
    accuracy = _estimated_accuracy(_fit(snapshot)) if method == "dawid_skene" else {}
    return {
        who: AnnotatorReliability(
            tasks=count,
            judged=judged.get(who, 0),
            agreed=agreed.get(who, 0),
            estimated_accuracy=accuracy.get(who),
        )
        for who, count in sorted(tasks.items())
    }


@dataclass(frozen=True)
class _Fitted:
    """What a fitted Dawid-Skene model estimated."""

    labels: pd.Series  # task -> its most probable label
    errors: pd.DataFrame  # (annotator, given label) x true label: P(given | true)
    priors: pd.Series  # label -> its share of tasks


def _fit(snapshot: AnnotationSnapshot) -> _Fitted:
    """Dawid-Skene fitted to every label of the shared tasks, reviewers' decisions given as
    known true labels. An annotator who labelled nothing gave no class and is left out."""
    # crowd-kit imports scikit-learn: only when asked for, not when the steps are loaded.
    from crowdkit.aggregation import DawidSkene

    if not isinstance(snapshot.task_type, SingleChoiceTaskType):
        raise ConfigurationError(
            f"Dawid-Skene consensus needs one label per task, which task type "
            f"{snapshot.task!r} does not have: use the majority consensus for it"
        )
    rows = []
    known: dict[int, str] = {}
    for item in snapshot.shared_items():
        rows += [
            (item.task_id, label.annotator, label.target)
            for label in item.annotations
            if label.target is not None
        ]
        if item.confirmed and item.target is not None:
            known[item.task_id] = item.target
    data = pd.DataFrame(rows, columns=["task", "worker", "label"])
    true_labels = pd.Series(known, dtype=object) if known else None
    model = DawidSkene(n_iter=100).fit(data, true_labels=true_labels)
    # crowd-kit types these as optional; `fit` always sets them.
    assert model.labels_ is not None and model.errors_ is not None and model.priors_ is not None
    return _Fitted(model.labels_, model.errors_, model.priors_)


def _estimated_accuracy(fitted: _Fitted) -> dict[str, float]:
    """Each annotator's chance of giving the true label, by the fitted model: the diagonal of
    their confusion matrix weighted by the classes' estimated priors (a label they never
    gave is on no row: they never give it right)."""
    if fitted.errors.empty:
        return {}
    accuracy = {}
    for worker, confusion in fitted.errors.groupby(level="worker"):
        given = confusion.droplevel("worker")
        accuracy[str(worker)] = float(
            sum(
                prior * given.at[label, label]
                for label, prior in fitted.priors.items()
                if label in given.index
            )
        )
    return accuracy
