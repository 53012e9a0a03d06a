"""The annotation snapshot: every usable annotation of a project, updated incrementally.

A training run fetches only the tasks Label Studio changed after the previous snapshot's
watermark (and a little before it, for changes committed late) and merges them in. The
watermark lives inside the snapshot artifact, so it only moves forward together with the
data it covers. What a project holds that the loop cannot use (tasks it did not create,
annotations whose result is not in Label Studio's shape) is skipped and reported, never
fatal: one bad task must not stop a team's training run.
"""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from annotation_loop.errors import LoopError, UnknownLabelError
from annotation_loop.labelstudio import LabelledTask
from annotation_loop.labelstudio.queues import REVIEW_SUFFIX
from annotation_loop.quality.consensus import AnnotatorLabel, Decision, majority_vote
from annotation_loop.task_types import TaskType, get_task_type

logger = logging.getLogger(__name__)

# One-line problems a merge keeps for its report (the counts stay exact beyond them).
REPORTED_PROBLEMS = 20


@dataclass(frozen=True)
class LabelledItem:
    task_id: int
    content_hash: str
    input_ref: str  # rebuilds the model input: an object URI, or the text itself
    target: Any  # what training uses: the consensus of `annotations` (None: there is none)
    # Each annotator's newest usable label, newest first; empty in snapshots from before.
    annotations: tuple[AnnotatorLabel, ...] = ()
    decided_by: Decision = "single"
    suggestion: Any = None  # the pre-annotation annotators were shown, if any

    def __post_init__(self) -> None:
        object.__setattr__(self, "annotations", tuple(self.annotations))

    @classmethod
    def by_majority(
        cls,
        task_id: int,
        content_hash: str,
        input_ref: str,
        annotations: Sequence[AnnotatorLabel],
        suggestion: Any = None,
    ) -> LabelledItem:
        """The item with the training label `majority_vote` decides from `annotations`."""
        consensus = majority_vote(annotations)
        return cls(
            task_id,
            content_hash,
            input_ref,
            consensus.target,
            tuple(annotations),
            consensus.decided_by,
            suggestion,
        )

    @property
    def shared(self) -> bool:
        """Labelled by several annotators: a task of the overlap set, where agreement,
        reliability and anchoring are measured."""
        return len(self.annotations) >= 2

    @property
    def confirmed(self) -> bool:
        """A reviewer decided this task's label (marked an annotation as ground truth)."""
        return self.decided_by == "reviewer"


@dataclass(frozen=True)
class MergeReport:
    """What one incremental fetch changed, and what it left out and why."""

    fetched_tasks: int = 0
    added: int = 0
    relabelled: int = 0
    unchanged: int = 0
    removed: int = 0  # previously labelled, now with no usable annotation
    cancelled: int = 0  # tasks whose annotations were all skipped/cancelled
    empty: int = 0  # tasks whose consensus is to label nothing
    undecided: int = 0  # tasks whose annotators disagree with no majority
    unannotated: int = 0
    foreign: int = 0  # tasks the loop did not create: uploaded in the UI, imported by hand
    malformed: int = 0  # annotations skipped because their result cannot be read
    late: int = 0  # changes stamped before the previous watermark, seen only now
    problems: tuple[str, ...] = ()  # the first foreign tasks and malformed annotations, why

    def __post_init__(self) -> None:
        # A stored report comes back from JSON with a list.
        object.__setattr__(self, "problems", tuple(self.problems))

    @property
    def changed(self) -> int:
        return self.added + self.relabelled + self.removed


@dataclass(frozen=True)
class AnnotationSnapshot:
    project_id: int
    task: str  # the task type's name
    labels: tuple[str, ...]
    items: dict[int, LabelledItem] = field(default_factory=dict)
    # Tasks annotated by several people with no consensus: for a reviewer, not for training.
    undecided: dict[int, LabelledItem] = field(default_factory=dict)
    watermark: datetime | None = None  # newest task `updated_at` this snapshot covers
    last_merge: MergeReport = field(default_factory=MergeReport)

    @classmethod
    def of_items(
        cls, project_id: int, task: str, labels: tuple[str, ...], items: Iterable[LabelledItem]
    ) -> AnnotationSnapshot:
        """A snapshot of `items` filed as a merge files them: one with no consensus is
        undecided."""
        snapshot = cls(project_id, task, labels)
        for item in items:
            shelf = snapshot.undecided if item.decided_by == "none" else snapshot.items
            shelf[item.task_id] = item
        return snapshot

    def shared_items(self) -> Iterator[LabelledItem]:
        """The decided and undecided tasks labelled by several annotators."""
        for item in (*self.items.values(), *self.undecided.values()):
            if item.shared:
                yield item

    @property
    def task_type(self) -> TaskType:
        return get_task_type(self.task)

    def label_counts(self) -> dict[str, int]:
        """How often each label is used: items per class, or spans per entity type."""
        task_type = self.task_type
        counts = Counter(
            label for item in self.items.values() for label in task_type.labels_of(item.target)
        )
        return {label: counts.get(label, 0) for label in self.labels}

    def split(self, validation_fraction: float) -> tuple[list[LabelledItem], list[LabelledItem]]:
        """(train, validation), stable across runs: an item's side depends on its content."""
        train: list[LabelledItem] = []
        validation: list[LabelledItem] = []
        for item in sorted(self.items.values(), key=lambda i: i.task_id):
            bucket = validation if in_validation(item.content_hash, validation_fraction) else train
            bucket.append(item)
        return train, validation


def in_validation(content_hash: str, fraction: float) -> bool:
    """Hash-based split: the same item lands on the same side in every run."""
    digest = hashlib.sha256(content_hash.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _annotation_time(annotation: dict[str, Any]) -> str:
    return str(annotation.get("updated_at") or annotation.get("created_at") or "")


@dataclass(frozen=True)
class TaskReading:
    """What a task's annotations say: its training target, or why it has none
    ("unannotated", "cancelled", "empty", "undecided": annotators disagree with no majority,
    or "malformed": none could be read); every annotator's label; and the malformed
    annotations skipped on the way, one line each."""

    target: Any
    reason: str  # "labelled" when `target` is set
    malformed: tuple[str, ...] = ()
    annotations: tuple[AnnotatorLabel, ...] = ()
    decided_by: Decision = "single"


def annotator_of(annotation: dict[str, Any]) -> str:
    """The Label Studio user id of an annotation's author: the API gives an id, or a user
    object where it expands it."""
    author = annotation.get("completed_by")
    if isinstance(author, dict):
        author = author.get("id")
    return "" if author is None else str(author)


def read_task(task: LabelledTask, task_type: TaskType, labels: Sequence[str]) -> TaskReading:
    """Each annotator's newest non-cancelled annotation that can be read (a malformed one is
    skipped for their next newest), and the label training uses: their consensus (see
    `majority_vote`).

    Raises `UnknownLabelError` for a label outside `labels`: that is the label list and the
    project disagreeing, a setting to fix, not one bad annotation.
    """
    if not task.annotations:
        return TaskReading(None, "unannotated")
    usable = [a for a in task.annotations if not a.get("was_cancelled")]
    if not usable:
        return TaskReading(None, "cancelled")
    input_ref = task_type.input_ref(task.data)
    malformed: list[str] = []
    newest: dict[str, AnnotatorLabel] = {}
    for annotation in sorted(usable, key=_annotation_time, reverse=True):
        annotator = annotator_of(annotation)
        if annotator in newest:
            continue
        where = f"annotation {annotation.get('id')} of task {task.id}"
        try:
            target = _read_result(annotation.get("result"), task_type, input_ref, labels, where)
        except UnknownLabelError:
            raise
        except LoopError as exc:
            malformed.append(str(exc))
            continue
        newest[annotator] = AnnotatorLabel(
            annotator, target, confirmed=bool(annotation.get("ground_truth"))
        )
    if not newest:
        return TaskReading(None, "malformed", tuple(malformed))
    annotations = tuple(newest.values())
    consensus = majority_vote(annotations)
    if consensus.target is not None:
        reason = "labelled"
    else:
        reason = "undecided" if consensus.decided_by == "none" else "empty"
    return TaskReading(
        consensus.target, reason, tuple(malformed), annotations, consensus.decided_by
    )


def shown_suggestion(task: LabelledTask, task_type: TaskType, labels: Sequence[str]) -> Any | None:
    """The target of the pre-annotation annotators saw: the loop's newest prediction made
    before the task's first annotation (review suggestions come after labelling and are not
    counted); None when the task had none."""
    first_annotation = min((_annotation_time(a) for a in task.annotations), default="")
    shown = [
        prediction
        for prediction in task.predictions
        if not str(prediction.get("model_version", "")).endswith(REVIEW_SUFFIX)
        and (not first_annotation or str(prediction.get("created_at", "")) <= first_annotation)
    ]
    if not shown:
        return None
    newest = max(shown, key=lambda prediction: str(prediction.get("created_at", "")))
    try:
        return _read_result(
            newest.get("result"),
            task_type,
            task_type.input_ref(task.data),
            labels,
            f"prediction {newest.get('id')} of task {task.id}",
        )
    except LoopError:  # a prediction the loop did not make; it is not a label anyway
        return None


def not_created_by_the_loop(task: LabelledTask, task_type: TaskType) -> str | None:
    """Why the loop did not create this task (uploaded in the UI, imported by hand, data
    of another task type), if it did not: every task it creates carries its item's
    `content_hash` and `uri` and the input its task type reads."""
    data = task.data
    content_hash, uri = data.get("content_hash"), data.get("uri")
    if not (isinstance(content_hash, str) and content_hash and isinstance(uri, str) and uri):
        return f"Task {task.id} has no content_hash and uri: the loop did not create it"
    try:
        if task_type.input_ref(data):
            return None
    except KeyError:
        pass
    return f"Task {task.id} has no input for {task_type.description}: the loop did not create it"


def _is_region(region: Any) -> bool:
    if not (isinstance(region, dict) and isinstance(region.get("value"), dict)):
        return False
    score = region.get("score")
    return score is None or (isinstance(score, int | float) and not isinstance(score, bool))


# Label Studio's region types whose value names labels, and the key of that list.
_LABEL_LISTS = {"choices": "choices", "labels": "labels"}


def _read_result(
    result: Any, task_type: TaskType, input_ref: str, labels: Sequence[str], where: str
) -> Any:
    """The target of one annotation's result; raises `LoopError` when it cannot be read.

    Label Studio stores whatever result an API client sends (a `choices` region without
    choices, labels that are numbers), so the shape of the regions is checked here before
    the task type reads them.
    """
    if not isinstance(result, list) or not all(_is_region(region) for region in result):
        raise LoopError(f"The result of {where} is not a list of regions with values")
    for region in result:
        key = _LABEL_LISTS.get(str(region.get("type")))
        names = region["value"].get(key) if key else None
        if key and not (
            isinstance(names, list) and names and all(isinstance(n, str) for n in names)
        ):
            raise LoopError(
                f"A {region.get('type')} region of {where} has {key} {names!r}, not a list of "
                "label names"
            )
    return task_type.target_from_result(result, input_ref, labels, where=where)


def merge_changes(
    previous: AnnotationSnapshot, changed_tasks: Iterable[LabelledTask]
) -> AnnotationSnapshot:
    """A new snapshot: `previous` with the changed tasks' current annotations applied.

    A task fetched again with the target the snapshot already holds (the fetch re-reads a
    window before the watermark) counts as unchanged, so `changed` stays 0 when nothing new
    was labelled. Tasks the loop did not create and malformed annotations are skipped, counted
    and logged with their task ids.
    """
    task_type = previous.task_type
    items = dict(previous.items)
    undecided = dict(previous.undecided)
    counts: Counter[str] = Counter()
    problems: list[str] = []
    watermark = previous.watermark
    for task in changed_tasks:
        counts["fetched_tasks"] += 1
        if watermark is None or task.updated_at > watermark:
            watermark = task.updated_at
        foreign = not_created_by_the_loop(task, task_type)
        if foreign:
            reading = TaskReading(None, "foreign")
            problems.append(foreign)
        else:
            reading = read_task(task, task_type, previous.labels)
            problems += reading.malformed
        counts["malformed"] += len(reading.malformed)
        old = items.get(task.id)
        undecided.pop(task.id, None)
        if reading.target is not None or reading.reason == "undecided":
            item = LabelledItem(
                task_id=task.id,
                content_hash=str(task.data["content_hash"]),
                input_ref=task_type.input_ref(task.data),
                target=reading.target,
                annotations=reading.annotations,
                decided_by=reading.decided_by,
                suggestion=shown_suggestion(task, task_type, previous.labels),
            )
        if reading.target is None:
            if reading.reason != "malformed":  # those tasks' annotations are counted instead
                counts[reading.reason] += 1
            if reading.reason == "undecided":
                undecided[task.id] = item
            if old is None:
                continue
            del items[task.id]
            outcome = "removed"
        else:
            items[task.id] = item
            if old is None:
                outcome = "added"
            elif old.target != reading.target:
                outcome = "relabelled"
            else:
                counts["unchanged"] += 1
                continue
        counts[outcome] += 1
        if previous.watermark is not None and task.updated_at <= previous.watermark:
            counts["late"] += 1
    if problems:
        logger.warning(
            "Skipped %d tasks the loop did not create and %d malformed annotations: %s",
            counts["foreign"],
            counts["malformed"],
            "; ".join(problems[:REPORTED_PROBLEMS]),
        )
    return replace(
        previous,
        items=items,
        undecided=undecided,
        watermark=watermark,
        last_merge=MergeReport(**counts, problems=tuple(problems[:REPORTED_PROBLEMS])),
    )
