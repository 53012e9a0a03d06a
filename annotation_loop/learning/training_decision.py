"""Whether a training run has anything to learn from: the loop's one guard against
registering model versions trained on nothing new."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

from annotation_loop.learning.annotations import AnnotationSnapshot


class TrainingDecision(BaseModel):
    train: bool
    reason: str  # one line, for the log, the run's metadata and the command's output
    labelled_items: int
    changed_items: int  # labelled, relabelled or unlabelled since the last trained snapshot


def decide_training(
    snapshot: AnnotationSnapshot, since: datetime | None, project_url: str
) -> TrainingDecision:
    """Train when the snapshot holds labelled items and some changed since the snapshot the
    last model was trained on (`since`, its watermark)."""
    labelled, changed = len(snapshot.items), snapshot.last_merge.changed
    if not labelled:
        reason = (
            "No annotations yet: label some tasks at "
            f"{project_url}, then run the training pipeline again"
        )
    elif not changed:
        reason = (
            f"No new annotations since {since}: nothing to train "
            f"({labelled} labelled items, all already used)"
        )
    else:
        reason = f"{changed} labelled items changed since {since or 'the beginning'}"
    return TrainingDecision(
        train=bool(labelled and changed),
        reason=reason,
        labelled_items=labelled,
        changed_items=changed,
    )
