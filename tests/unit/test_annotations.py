from datetime import UTC, datetime, timedelta

import pytest

from annotation_loop.annotations import (
    AnnotationSnapshot,
    in_validation,
    merge_changes,
    newest_target,
)
from annotation_loop.errors import UnknownLabelError
from annotation_loop.labelstudio import LabelledTask
from annotation_loop.task_types import get_task_type
from annotation_loop.task_types.choices import result_for_label

IMAGE = get_task_type("image")

LABELS = ("cat", "dog")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def annotation(label: str | None, minutes: int, cancelled: bool = False) -> dict:
    return {
        "result": result_for_label(label, "image") if label else [],
        "was_cancelled": cancelled,
        "created_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "updated_at": (T0 + timedelta(minutes=minutes)).isoformat(),
    }


def task(task_id: int, annotations: list[dict], minutes: int = 0) -> LabelledTask:
    return LabelledTask(
        id=task_id,
        data={"uri": f"s3://b/batch_1/{task_id}.png", "content_hash": f"etag:{task_id}"},
        annotations=annotations,
        predictions=[],
        updated_at=T0 + timedelta(minutes=minutes),
    )


def test_newest_non_cancelled_annotation_wins():
    t = task(1, [annotation("cat", 1), annotation("dog", 5), annotation("cat", 9, cancelled=True)])
    assert newest_target(t, IMAGE, LABELS) == ("dog", "labelled")


def test_reasons_for_no_label():
    assert newest_target(task(1, []), IMAGE, LABELS) == (None, "unannotated")
    assert newest_target(task(1, [annotation("cat", 1, cancelled=True)]), IMAGE, LABELS) == (
        None,
        "cancelled",
    )
    assert newest_target(task(1, [annotation(None, 1)]), IMAGE, LABELS) == (None, "empty")


def test_unknown_label_is_a_clear_error():
    message = "'bird' of the annotation of task 1 is not in the label list"
    with pytest.raises(UnknownLabelError, match=message):
        newest_target(task(1, [annotation("bird", 1)]), IMAGE, LABELS)


def test_merge_counts_and_advances_watermark():
    empty = AnnotationSnapshot(project_id=7, task="image", labels=LABELS)
    first = merge_changes(
        empty,
        [
            task(1, [annotation("cat", 1)], minutes=1),
            task(2, [annotation("dog", 2)], minutes=2),
            task(3, [annotation("cat", 3, cancelled=True)], minutes=3),
            task(4, [annotation(None, 4)], minutes=4),
        ],
    )
    assert {i: item.target for i, item in first.items.items()} == {1: "cat", 2: "dog"}
    assert first.watermark == T0 + timedelta(minutes=4)
    report = first.last_merge
    assert (report.added, report.cancelled, report.empty, report.fetched_tasks) == (2, 1, 1, 4)
    assert first.label_counts() == {"cat": 1, "dog": 1}

    # Task 1 relabelled, task 2 now skipped: the second merge only sees those two.
    second = merge_changes(
        first,
        [
            task(1, [annotation("cat", 1), annotation("dog", 10)], minutes=10),
            task(2, [annotation("dog", 2, cancelled=True)], minutes=11),
        ],
    )
    assert {i: item.target for i, item in second.items.items()} == {1: "dog"}
    assert (second.last_merge.relabelled, second.last_merge.removed) == (1, 1)
    assert second.watermark == T0 + timedelta(minutes=11)
    assert first.items.keys() == {1, 2}, "merging must not mutate the previous snapshot"


def test_merging_nothing_changes_nothing():
    snap = merge_changes(
        AnnotationSnapshot(project_id=1, task="image", labels=LABELS),
        [task(1, [annotation("cat", 1)], 1)],
    )
    again = merge_changes(snap, [])
    assert again.items == snap.items
    assert again.watermark == snap.watermark
    assert again.last_merge.changed == 0


def test_split_is_stable_and_roughly_proportional():
    hashes = [f"etag:{i}" for i in range(2000)]
    sides = [in_validation(h, 0.2) for h in hashes]
    assert sides == [in_validation(h, 0.2) for h in hashes]
    assert 0.15 < sum(sides) / len(sides) < 0.25
    snap = merge_changes(
        AnnotationSnapshot(project_id=1, task="image", labels=LABELS),
        [task(i, [annotation("cat", 1)], 1) for i in range(200)],
    )
    train, validation = snap.split(0.2)
    assert len(train) + len(validation) == 200
    assert {i.task_id for i in train}.isdisjoint({i.task_id for i in validation})
    # Adding items never moves an existing item to the other side.
    bigger = merge_changes(snap, [task(i, [annotation("dog", 1)], 2) for i in range(200, 400)])
    assert {i.task_id for i in validation} <= {i.task_id for i in bigger.split(0.2)[1]}
