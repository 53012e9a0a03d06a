"""The annotation snapshot: every usable annotation of a project, updated incrementally.

A training run fetches only the tasks Label Studio changed after the previous snapshot's
watermark and merges them in. The watermark lives inside the snapshot artifact, so it
only moves forward together with the data it covers.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from annotation_loop.labelstudio import LabelledTask
from annotation_loop.task_types import TaskType, get_task_type


@dataclass(frozen=True)
class LabelledItem:
    task_id: int
    content_hash: str
    input_ref: str  # rebuilds the model input: an object URI, or the text itself
    target: Any  # the task type's target: a label, a tuple of spans


@dataclass(frozen=True)
class MergeReport:
    """What one incremental fetch changed, and what it left out and why."""

    fetched_tasks: int = 0
    added: int = 0
    relabelled: int = 0
    unchanged: int = 0
    removed: int = 0  # previously labelled, now only skipped/cancelled/empty
    cancelled: int = 0  # tasks whose annotations were all skipped/cancelled
    empty: int = 0  # tasks whose newest usable annotation labels nothing
    unannotated: int = 0

    @property
    def changed(self) -> int:
        return self.added + self.relabelled + self.removed


@dataclass(frozen=True)
class AnnotationSnapshot:
    project_id: int
    task: str  # the task type's name
    labels: tuple[str, ...]
    items: dict[int, LabelledItem] = field(default_factory=dict)
    watermark: datetime | None = None  # newest task `updated_at` this snapshot covers
    last_merge: MergeReport = field(default_factory=MergeReport)

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


def newest_target(
    task: LabelledTask, task_type: TaskType, labels: Sequence[str]
) -> tuple[Any, str]:
    """The target of the newest non-cancelled annotation, and why there is none otherwise."""
    usable = [a for a in task.annotations if not a.get("was_cancelled")]
    if not task.annotations:
        return None, "unannotated"
    if not usable:
        return None, "cancelled"
    newest = max(usable, key=_annotation_time)
    target = task_type.target_from_result(
        newest.get("result") or [],
        task_type.input_ref(task.data),
        labels,
        where=f"the annotation of task {task.id}",
    )
    return (target, "labelled") if target is not None else (None, "empty")


def merge_changes(
    previous: AnnotationSnapshot, changed_tasks: Iterable[LabelledTask]
) -> AnnotationSnapshot:
    """A new snapshot: `previous` with the changed tasks' current annotations applied."""
    task_type = previous.task_type
    items = dict(previous.items)
    counts: Counter[str] = Counter()
    watermark = previous.watermark
    for task in changed_tasks:
        counts["fetched_tasks"] += 1
        if watermark is None or task.updated_at > watermark:
            watermark = task.updated_at
        target, reason = newest_target(task, task_type, previous.labels)
        old = items.get(task.id)
        if target is None:
            counts[reason] += 1
            if old is not None:
                del items[task.id]
                counts["removed"] += 1
            continue
        items[task.id] = LabelledItem(
            task_id=task.id,
            content_hash=str(task.data["content_hash"]),
            input_ref=task_type.input_ref(task.data),
            target=target,
        )
        if old is None:
            counts["added"] += 1
        elif old.target != target:
            counts["relabelled"] += 1
        else:
            counts["unchanged"] += 1
    return replace(
        previous,
        items=items,
        watermark=watermark,
        last_merge=MergeReport(**counts),
    )
