"""The annotation snapshot: every usable label of a project, updated incrementally.

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

from annotation_loop.image_classification import label_from_result
from annotation_loop.labelstudio import LabelledTask


@dataclass(frozen=True)
class LabelledItem:
    task_id: int
    uri: str
    content_hash: str
    label: str


@dataclass(frozen=True)
class MergeReport:
    """What one incremental fetch changed, and what it left out and why."""

    fetched_tasks: int = 0
    added: int = 0
    relabelled: int = 0
    unchanged: int = 0
    removed: int = 0  # previously labelled, now only skipped/cancelled/empty
    cancelled: int = 0  # tasks whose annotations were all skipped/cancelled
    empty: int = 0  # tasks whose newest usable annotation chose nothing
    unannotated: int = 0

    @property
    def changed(self) -> int:
        return self.added + self.relabelled + self.removed


@dataclass(frozen=True)
class AnnotationSnapshot:
    project_id: int
    labels: tuple[str, ...]
    items: dict[int, LabelledItem] = field(default_factory=dict)
    watermark: datetime | None = None  # newest task `updated_at` this snapshot covers
    last_merge: MergeReport = field(default_factory=MergeReport)

    def label_counts(self) -> dict[str, int]:
        counts = Counter(item.label for item in self.items.values())
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
    """Hash-based split: the same image lands on the same side in every run."""
    digest = hashlib.sha256(content_hash.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def _annotation_time(annotation: dict[str, Any]) -> str:
    return str(annotation.get("updated_at") or annotation.get("created_at") or "")


def newest_label(task: LabelledTask, labels: Sequence[str]) -> tuple[str | None, str]:
    """The label of the newest non-cancelled annotation, and why there is none otherwise."""
    usable = [a for a in task.annotations if not a.get("was_cancelled")]
    if not task.annotations:
        return None, "unannotated"
    if not usable:
        return None, "cancelled"
    newest = max(usable, key=_annotation_time)
    label = label_from_result(newest.get("result") or [], labels)
    return (label, "labelled") if label is not None else (None, "empty")


def merge_changes(
    previous: AnnotationSnapshot, changed_tasks: Iterable[LabelledTask]
) -> AnnotationSnapshot:
    """A new snapshot: `previous` with the changed tasks' current labels applied."""
    items = dict(previous.items)
    counts: Counter[str] = Counter()
    watermark = previous.watermark
    for task in changed_tasks:
        counts["fetched_tasks"] += 1
        if watermark is None or task.updated_at > watermark:
            watermark = task.updated_at
        label, reason = newest_label(task, previous.labels)
        old = items.get(task.id)
        if label is None:
            counts[reason] += 1
            if old is not None:
                del items[task.id]
                counts["removed"] += 1
            continue
        items[task.id] = LabelledItem(
            task_id=task.id,
            uri=str(task.data["uri"]),
            content_hash=str(task.data["content_hash"]),
            label=label,
        )
        if old is None:
            counts["added"] += 1
        elif old.label != label:
            counts["relabelled"] += 1
        else:
            counts["unchanged"] += 1
    return replace(
        previous,
        items=items,
        watermark=watermark,
        last_merge=MergeReport(**counts),
    )
