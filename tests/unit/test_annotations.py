from datetime import UTC, datetime, timedelta

import pytest

from annotation_loop.errors import UnknownLabelError
from annotation_loop.labelstudio import LabelledTask
from annotation_loop.learning.annotations import (
    AnnotationSnapshot,
    MergeReport,
    TaskReading,
    in_validation,
    merge_changes,
    read_task,
)
from annotation_loop.task_types import get_task_type
from annotation_loop.task_types.choices import result_for_label

IMAGE = get_task_type("image")
NER = get_task_type("ner")

LABELS = ("cat", "dog")
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def annotation(
    label: str | None,
    minutes: int,
    cancelled: bool = False,
    by: int | dict | None = None,
    ground_truth: bool = False,
) -> dict:
    return {
        "id": minutes,
        "result": result_for_label(label, "image") if label else [],
        "was_cancelled": cancelled,
        "created_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "updated_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        "completed_by": by,
        "ground_truth": ground_truth,
    }


def task(task_id: int, annotations: list[dict], minutes: int = 0) -> LabelledTask:
    return LabelledTask(
        id=task_id,
        data={"uri": f"s3://b/batch_1/{task_id}.png", "content_hash": f"etag:{task_id}"},
        annotations=annotations,
        predictions=[],
        updated_at=T0 + timedelta(minutes=minutes),
    )


def reading_of(t: LabelledTask) -> tuple[object, str]:
    reading = read_task(t, IMAGE, LABELS)
    return reading.target, reading.reason


def test_an_annotators_newest_non_cancelled_annotation_wins():
    t = task(1, [annotation("cat", 1), annotation("dog", 5), annotation("cat", 9, cancelled=True)])
    assert reading_of(t) == ("dog", "labelled")


def test_reasons_for_no_label():
    assert read_task(task(1, []), IMAGE, LABELS) == TaskReading(None, "unannotated")
    cancelled = task(1, [annotation("cat", 1, cancelled=True)])
    assert read_task(cancelled, IMAGE, LABELS) == TaskReading(None, "cancelled")
    assert reading_of(task(1, [annotation(None, 1)])) == (None, "empty")


def test_unknown_label_is_a_clear_error():
    message = "'bird' of annotation 1 of task 1 is not in the label list"
    with pytest.raises(UnknownLabelError, match=message):
        read_task(task(1, [annotation("bird", 1)]), IMAGE, LABELS)


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


def test_a_task_committed_late_is_merged_and_refetched_tasks_change_nothing():
    """The fetch re-reads a window before the watermark: a task stamped before it but not
    seen by the last fetch (its change committed late) is added, and the tasks that were
    seen already count as unchanged, so `changed` says whether anything is new."""
    first = merge_changes(
        AnnotationSnapshot(project_id=1, task="image", labels=LABELS),
        [task(1, [annotation("cat", 1)], 1), task(2, [annotation("dog", 5)], 5)],
    )
    assert first.watermark == T0 + timedelta(minutes=5)

    refetched = [task(1, [annotation("cat", 1)], 1), task(2, [annotation("dog", 5)], 5)]
    again = merge_changes(first, refetched)
    assert again.last_merge.changed == 0 and again.last_merge.unchanged == 2
    assert again.items == first.items and again.watermark == first.watermark

    late = task(3, [annotation("dog", 3)], minutes=3)  # before the watermark, seen only now
    caught = merge_changes(first, [*refetched, late])
    assert caught.items[3].target == "dog"
    merge = caught.last_merge
    assert (merge.added, merge.late, merge.unchanged, merge.changed) == (1, 1, 2, 1)
    assert caught.watermark == first.watermark, "the watermark never moves back"


def foreign(task_id: int, data: dict) -> LabelledTask:
    return LabelledTask(task_id, data, [annotation("cat", 1)], [], T0)


def test_tasks_the_loop_did_not_create_are_skipped_and_counted():
    snapshot = merge_changes(
        AnnotationSnapshot(project_id=1, task="image", labels=LABELS),
        [
            task(1, [annotation("cat", 1)]),
            foreign(2, {"image": "https://example.com/a.png"}),  # uploaded in the UI
            foreign(3, {"image": "/x.png", "content_hash": 7, "uri": ["x"]}),  # by hand
        ],
    )
    assert list(snapshot.items) == [1]
    merge = snapshot.last_merge
    assert (merge.foreign, merge.added, merge.changed) == (2, 1, 1)
    assert [problem.split()[1] for problem in merge.problems] == ["2", "3"]

    # An image task's data where a text task's is expected.
    text = AnnotationSnapshot(project_id=1, task="text", labels=LABELS)
    assert merge_changes(text, [task(5, [annotation("cat", 1)])]).last_merge.foreign == 1


def choice_result(value: object) -> list[dict]:
    return [{"from_name": "label", "to_name": "image", "type": "choices", "value": value}]


@pytest.mark.parametrize(
    "result",
    [
        choice_result({}),  # no choices
        choice_result({"choices": []}),
        choice_result({"choices": "cat"}),  # a string, not a list
        choice_result({"choices": [5]}),  # a label that is not a string
        choice_result("cat"),
        {"choices": ["cat"]},  # not a list of regions
        [{**choice_result({"choices": ["cat"]})[0], "score": "high"}],
    ],
)
def test_a_malformed_annotation_is_skipped_for_the_one_before_it(result):
    bad = {**annotation("dog", 5), "id": 77, "result": result}
    reading = read_task(task(1, [annotation("cat", 1), bad]), IMAGE, LABELS)
    assert (reading.target, reading.reason) == ("cat", "labelled")
    [problem] = reading.malformed
    assert "annotation 77 of task 1" in problem and "\n" not in problem

    alone = merge_changes(
        AnnotationSnapshot(project_id=1, task="image", labels=LABELS), [task(1, [bad])]
    )
    assert alone.items == {}
    assert (alone.last_merge.malformed, alone.last_merge.empty) == (1, 0)


def span_result(start: object, end: object, labels: object = ("person",)) -> list[dict]:
    value = {"start": start, "end": end, "labels": list(labels) if labels else labels}
    return [{"from_name": "label", "to_name": "text", "type": "labels", "value": value}]


def test_spans_with_bad_offsets_are_skipped_and_reported():
    text = "Ada Lovelace wrote code"
    good = {**annotation(None, 1), "result": span_result(0, 12)}

    def ner_task(task_id: int, result: list[dict]) -> LabelledTask:
        bad = {**annotation(None, 5), "id": task_id * 10, "result": result}
        data = {"text": text, "uri": f"s3://b/t.jsonl#{task_id}", "content_hash": f"h{task_id}"}
        return LabelledTask(task_id, data, [good, bad], [], T0)

    tasks = [
        ner_task(1, span_result(5, 500)),  # past the end of the text
        ner_task(2, span_result(-3, 2)),
        ner_task(3, span_result("0", "3")),  # offsets that are not numbers
        ner_task(4, span_result(0, 3, labels=None)),
        ner_task(5, span_result(0, 3, labels=[1])),
        ner_task(6, [*span_result(0, 12), *span_result(4, 15)]),  # overlapping
    ]
    snapshot = merge_changes(
        AnnotationSnapshot(project_id=1, task="ner", labels=("person", "place")), tasks
    )
    assert snapshot.last_merge.malformed == 6
    assert {i: item.target for i, item in snapshot.items.items()} == {
        i: NER.target_from_result(good["result"], text, ("person", "place"), "")
        for i in range(1, 7)
    }
    assert all(f"of task {i}" in p for i, p in enumerate(snapshot.last_merge.problems, 1))


def test_an_unknown_label_still_stops_the_merge():
    """A label outside the list is the settings and the project disagreeing: a thing to fix
    (add the label, or fix the annotation), not one bad annotation to skip."""
    with pytest.raises(UnknownLabelError):
        merge_changes(
            AnnotationSnapshot(project_id=1, task="image", labels=LABELS),
            [task(1, [annotation("bird", 1)])],
        )


def test_a_stored_merge_report_reads_back_equal():
    report = MergeReport(foreign=1, problems=("Task 2 has no content_hash and uri",))
    assert MergeReport(**{**report.__dict__, "problems": list(report.problems)}) == report


def test_several_annotators_are_decided_by_a_strict_majority():
    # Annotator 3 changed their mind: only their newest label votes.
    t = task(
        1,
        [
            annotation("dog", 1, by=1),
            annotation("cat", 2, by=2),
            annotation("dog", 3, by=3),
            annotation("cat", 4, by={"id": 3, "email": "c@x"}),
        ],
    )
    reading = read_task(t, IMAGE, LABELS)
    assert (reading.target, reading.reason, reading.decided_by) == ("cat", "labelled", "majority")
    assert [(a.annotator, a.target) for a in reading.annotations] == [
        ("3", "cat"),
        ("2", "cat"),
        ("1", "dog"),
    ]


def test_a_split_without_majority_is_undecided_until_a_reviewer_decides():
    split = [annotation("dog", 1, by=1), annotation("cat", 2, by=2)]
    reading = read_task(task(1, split), IMAGE, LABELS)
    assert (reading.target, reading.reason, reading.decided_by) == (None, "undecided", "none")
    # The reviewer stars the older annotation as ground truth: it wins over the newer one.
    decided = [annotation("dog", 1, by=1, ground_truth=True), annotation("cat", 2, by=2)]
    reading = read_task(task(1, decided), IMAGE, LABELS)
    assert (reading.target, reading.decided_by) == ("dog", "reviewer")


def test_undecided_tasks_are_kept_apart_from_training_and_leave_it_once_decided():
    empty = AnnotationSnapshot(project_id=7, task="image", labels=LABELS)
    split = [annotation("dog", 1, by=1), annotation("cat", 2, by=2)]
    first = merge_changes(
        empty, [task(1, split, minutes=2), task(2, [annotation("cat", 3, by=1)], minutes=3)]
    )
    assert set(first.items) == {2} and set(first.undecided) == {1}
    assert first.last_merge.undecided == 1
    assert first.undecided[1].target is None
    assert [a.target for a in first.undecided[1].annotations] == ["cat", "dog"]
    tie_broken = [*split, annotation("dog", 4, by=3)]
    second = merge_changes(first, [task(1, tie_broken, minutes=4)])
    assert second.items[1].target == "dog" and second.items[1].decided_by == "majority"
    assert not second.undecided
    assert not second.items[1].confirmed


def test_the_suggestion_shown_is_the_prediction_made_before_the_first_annotation():
    def prediction(label: str, minutes: int, version: str = "m:1") -> dict:
        return {
            "id": minutes,
            "model_version": version,
            "result": result_for_label(label, "image"),
            "created_at": (T0 + timedelta(minutes=minutes)).isoformat(),
        }

    t = task(1, [annotation("cat", 5, by=1)])
    shown = LabelledTask(
        id=t.id,
        data=t.data,
        annotations=t.annotations,
        # The review suggestion and the prediction made after labelling were never shown.
        predictions=[
            prediction("dog", 1),
            prediction("cat", 6),
            prediction("cat", 2, "m:1 review"),
        ],
        updated_at=t.updated_at,
    )
    merged = merge_changes(AnnotationSnapshot(project_id=7, task="image", labels=LABELS), [shown])
    assert merged.items[1].suggestion == "dog"
    assert (
        merge_changes(AnnotationSnapshot(project_id=7, task="image", labels=LABELS), [t])
        .items[1]
        .suggestion
        is None
    )
