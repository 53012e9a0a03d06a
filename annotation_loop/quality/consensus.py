"""One label per task from several annotators' labels: a reviewer's decision, else the
label a strict majority gave.

A task whose annotators split with no majority (two people, two answers) has no consensus:
training leaves it out until a reviewer decides it (marks one annotation as ground truth in
Label Studio, the star in the annotation's menu) or another annotator breaks the tie.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

# How a task's training label was decided.
Decision = Literal["single", "majority", "reviewer", "dawid_skene", "none"]
# How labels of several annotators are combined (`consensus:` in training.yaml): the majority,
# or Dawid-Skene's estimate, which weighs each annotator by their estimated reliability.
ConsensusMethod = Literal["majority", "dawid_skene"]
# Label Studio user id -> how reports name that annotator (their email).
AnnotatorNames = Mapping[str, str]


def annotator_name(who: str, names: AnnotatorNames | None) -> str:
    """How a report names the annotator with Label Studio user id `who`."""
    return (names or {}).get(who) or f"annotator {who}"


@dataclass(frozen=True)
class AnnotatorLabel:
    """One annotator's newest usable label of a task."""

    annotator: str  # their Label Studio user id ("" when Label Studio did not say)
    target: Any  # the task type's target; None when they labelled nothing
    confirmed: bool = False  # marked as ground truth in Label Studio: a reviewer's decision


@dataclass(frozen=True)
class Consensus:
    target: Any  # None when `decided_by` is "none", or when the consensus is "nothing"
    decided_by: Decision


def majority_vote(labels: Sequence[AnnotatorLabel]) -> Consensus:
    """The reviewer's label (the newest confirmed one: `labels` come newest first), else the
    one label, else the label more than half the annotators gave, else no consensus."""
    confirmed = [label for label in labels if label.confirmed]
    if confirmed:
        return Consensus(confirmed[0].target, "reviewer")
    if len(labels) == 1:
        return Consensus(labels[0].target, "single")
    # Targets need not be hashable (spans, boxes): counted by equality, a handful each.
    votes: list[tuple[Any, int]] = []
    for label in labels:
        for position, (target, count) in enumerate(votes):
            if target == label.target:
                votes[position] = (target, count + 1)
                break
        else:
            votes.append((label.target, 1))
    target, count = max(votes, key=lambda vote: vote[1])
    if 2 * count > len(labels):
        return Consensus(target, "majority")
    return Consensus(None, "none")


def reference_without(labels: Sequence[AnnotatorLabel], annotator: str) -> Consensus:
    """What `annotator`'s label is judged against: a reviewer's decision on another
    annotation, else the others' majority (leave-one-out, so nobody is judged by their own
    vote); `decided_by` "none" when the others have no majority."""
    others = [label for label in labels if label.annotator != annotator]
    if not others:
        return Consensus(None, "none")
    return majority_vote(others)
