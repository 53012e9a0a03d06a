"""The oracle as several simulated annotators, each a Label Studio user of their own, on a
project with an overlap set: what they post comes back through the annotation fetch as each
annotator's label, with a consensus, and a rerun posts nothing."""

import hashlib
from collections.abc import Iterator
from typing import Any

import pytest

from annotation_loop.dev.oracle import OracleTask, SimulatedAnnotator, crew, label_with_truth
from annotation_loop.labelstudio import LabelStudioClient, PredictionIn
from annotation_loop.learning.annotations import AnnotationSnapshot, merge_changes
from annotation_loop.quality.aggregation import annotator_reliability
from annotation_loop.quality.sampling import LabelQuality
from annotation_loop.task_types import get_task_type

pytestmark = pytest.mark.integration

IMAGE = get_task_type("image")
LABELS = ("cat", "dog", "bird")
TASKS = 20
CAREFUL = SimulatedAnnotator("careful")
CARELESS = SimulatedAnnotator("careless", error_rate=0.3)
ACCEPTING = SimulatedAnnotator("accepting", accepts_pre_annotations=True)
ANNOTATORS = (CAREFUL, CARELESS, ACCEPTING)
QUALITY = LabelQuality(overlap_share=0.5, overlap_annotators=3, anchoring_share=0.0)


def task_data(i: int) -> dict[str, Any]:
    # The same items in every run, so the overlap set and the annotators' slips are too.
    uri = f"s3://bucket/batch_1/{i}.png"
    return {
        "image": uri,
        "uri": uri,
        "key": f"batch_1/{i}.png",
        "batch": "batch_1",
        "content_hash": hashlib.sha256(uri.encode()).hexdigest(),
    }


def pre_annotation(i: int) -> str | None:
    """Right for a quarter of the tasks, wrong for half, none for the rest."""
    truth = LABELS[i % len(LABELS)]
    wrong = LABELS[(i + 1) % len(LABELS)]
    return [truth, wrong, wrong, None][i % 4]


@pytest.fixture
def labelled_project(client: LabelStudioClient, unique_name: str) -> Iterator[int]:
    project_id = client.get_or_create_project(unique_name, IMAGE.label_config(LABELS))
    yield project_id
    client.delete_project(project_id)


def test_simulated_annotators_label_the_overlap_set_as_distinct_users(
    client: LabelStudioClient, labelled_project: int
) -> None:
    data = [task_data(i) for i in range(TASKS)]
    ids = client.import_tasks(labelled_project, data)
    predicted = {task_id: pre_annotation(i) for i, task_id in enumerate(ids)}
    client.import_predictions(
        labelled_project,
        [
            PredictionIn(task_id, IMAGE.result_for_target(label, ""), 0.5, "model:1")
            for task_id, label in predicted.items()
            if label is not None
        ],
    )
    truth = {d["key"]: LABELS[i % len(LABELS)] for i, d in enumerate(data)}
    tasks = [
        OracleTask(task_id, d["key"], d["uri"], predicted[task_id], d["content_hash"])
        for task_id, d in zip(ids, data, strict=True)
    ]
    overlap = {t.task_id for t in tasks if QUALITY.in_overlap(t.content_hash)}
    assert 4 <= len(overlap) <= TASKS - 4, "both sets have several tasks"

    report = label_with_truth(
        client, IMAGE, tasks, truth, annotators=ANNOTATORS, quality=QUALITY, labels=LABELS
    )

    user = {a.name: str(client.ensure_user(a.email, a.name)) for a in ANNOTATORS}
    assert len(set(user.values())) == 3, "each annotator is a user of their own"
    emails = client.user_emails()
    assert {emails[user[a.name]] for a in ANNOTATORS} == {a.email for a in ANNOTATORS}
    snapshot = merge_changes(
        AnnotationSnapshot(labelled_project, IMAGE.name, LABELS),
        client.iter_tasks_updated_since(labelled_project, None),
    )
    items = {**snapshot.items, **snapshot.undecided}
    assert set(items) == set(ids), "every task is labelled"
    posted = slips = 0
    for task in tasks:
        item = items[task.task_id]
        labels = {label.annotator: label.target for label in item.annotations}
        posted += len(labels)
        if task.task_id in overlap:
            assert set(labels) == set(user.values()), "the overlap set: every annotator"
        else:
            [chosen] = crew(ANNOTATORS, task.key, 1)
            assert set(labels) == {user[chosen.name]}, "the rest: the one the task's hash picks"
        assert item.suggestion == task.predicted
        if user[ACCEPTING.name] in labels and task.predicted is not None:
            assert labels[user[ACCEPTING.name]] == task.predicted, "accepts what was shown"
        if user[CAREFUL.name] in labels:
            assert labels[user[CAREFUL.name]] == truth[task.key]
        slips += labels.get(user[CARELESS.name], truth[task.key]) != truth[task.key]
        honest = [labels.get(user[a.name]) for a in (CAREFUL, CARELESS)]
        if task.task_id in overlap and honest[0] == honest[1]:
            assert item.target == truth[task.key], "two honest annotators agreeing decide"

    # The report says what Label Studio now holds, annotator by annotator.
    assert sum(counts.labelled for counts in report.annotators.values()) == posted
    assert report.annotators[CARELESS.name].wrong == slips > 0
    accepted_wrong = [
        task
        for task in tasks
        if task.predicted not in (None, truth[task.key])
        and user[ACCEPTING.name] in {label.annotator for label in items[task.task_id].annotations}
    ]
    assert accepted_wrong, "the accepting annotator was shown wrong pre-annotations"
    assert report.annotators[ACCEPTING.name].wrong >= len(accepted_wrong)
    assert set(annotator_reliability(snapshot, "majority")) == set(user.values())

    again = label_with_truth(
        client, IMAGE, tasks, truth, annotators=ANNOTATORS, quality=QUALITY, labels=LABELS
    )
    assert again.already_annotated == posted and again.labelled == 0
    assert all(counts.labelled == 0 for counts in again.annotators.values())
    assert sum(len(client.annotator_ids(task_id)) for task_id in ids) == posted
