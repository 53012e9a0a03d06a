"""The on-disk tables the inference pipeline hands on (the task index, a batch's tasks, its
predictions) and their materializers, against a real (local) ZenML artifact store. With
Label Studio they are exercised by tests/integration/test_sync.py and test_loop.py."""

import json
import sqlite3
import tempfile

import pytest
from zenml.materializers.materializer_registry import materializer_registry

from annotation_loop.data.batch_tasks import BatchTask, BatchTasks
from annotation_loop.data.sync import SyncReport
from annotation_loop.data.task_index import EXTEND_CHUNK, IndexedTask, TaskIndex
from annotation_loop.data.task_predictions import TaskPrediction, TaskPredictions
from annotation_loop.errors import ArtifactError
from annotation_loop.labelstudio import TaskRef
from annotation_loop.learning.pre_annotations import BatchPredictions
from materializers import (
    BatchPredictionsMaterializer,
    SyncReportMaterializer,
    TaskIndexMaterializer,
)


def refs(count: int, start: int = 1, batch: str = "batch_1") -> list[TaskRef]:
    return [
        TaskRef(id=i, content_hash=f"md5:{i}", uri=f"s3://b/{batch}/{i}.png", batch=batch)
        for i in range(start, start + count)
    ]


def test_the_oldest_task_keeps_its_content_and_every_task_is_counted():
    index = TaskIndex("http://ls", 1)
    index.extend(refs(3))
    index.extend(
        [
            TaskRef(id=7, content_hash="md5:2", uri="s3://b/batch_2/copy.png", batch="batch_2"),
            TaskRef(id=8, content_hash="", uri="/not/ours.png", batch=""),  # not the loop's
        ]
    )
    assert (index.max_task_id, index.task_count, len(index)) == (8, 5, 3)
    assert index.find(["md5:2", "md5:9"]) == {
        "md5:2": IndexedTask(2, "s3://b/batch_1/2.png", "batch_1")
    }
    assert index.batches() == {"batch_1"}


def test_lookups_and_inserts_beyond_one_chunk():
    """More tasks than one insert transaction and one IN (...) statement take."""
    index = TaskIndex("http://ls", 1)
    count = EXTEND_CHUNK + 5
    index.extend(iter(refs(count)))  # a stream, as Label Studio's pages come
    wanted = [f"md5:{i}" for i in range(1, count + 1, 7)]
    found = index.find([*wanted, "md5:none"])
    assert sorted(found) == sorted(wanted)
    assert (index.max_task_id, index.task_count) == (count, count)
    assert [content_hash for content_hash, _ in index.items()][:3] == ["md5:1", "md5:2", "md5:3"]


def test_a_copy_is_independent():
    index = TaskIndex("http://ls", 1)
    index.extend(refs(2))
    copy = index.copy()
    copy.extend(refs(1, start=3, batch="batch_2"))
    assert (len(index), index.max_task_id, index.batches()) == (2, 2, {"batch_1"})
    assert (len(copy), copy.max_task_id, copy.batches()) == (3, 3, {"batch_1", "batch_2"})


def test_the_index_round_trips_through_the_artifact_store(artifact_store):
    assert materializer_registry[TaskIndex] is TaskIndexMaterializer
    index = TaskIndex("http://ls", 4)
    index.extend(refs(5))
    index.extend([TaskRef(id=9, content_hash="", uri="", batch="")])
    uri = f"{artifact_store.path}/task_index/1"
    artifact_store.makedirs(uri)
    saver = TaskIndexMaterializer(uri, artifact_store=artifact_store)
    saver.save(index)
    loaded = TaskIndexMaterializer(uri, artifact_store=artifact_store).load(TaskIndex)
    assert (loaded.label_studio_url, loaded.project_id) == ("http://ls", 4)
    assert (loaded.max_task_id, loaded.task_count) == (9, 6)
    assert list(loaded.items()) == list(index.items())
    assert saver.extract_metadata(index) == {
        "label_studio_url": "http://ls",
        "project_id": 4,
        "indexed_tasks": 5,
    }


def test_an_index_stored_as_json_by_an_earlier_version_still_loads(artifact_store):
    uri = f"{artifact_store.path}/task_index/old"
    artifact_store.makedirs(uri)
    with artifact_store.open(f"{uri}/data_v2.json", "w") as handle:
        handle.write(
            json.dumps(
                {
                    "label_studio_url": "http://ls",
                    "project_id": 2,
                    "max_task_id": 12,
                    "task_count": 4,
                    "tasks": {
                        "md5:b": [11, "s3://b/batch_2/b.png", "batch_2"],
                        "md5:a": [10, "s3://b/batch_1/a.png", "batch_1"],
                    },
                }
            )
        )
    loaded = TaskIndexMaterializer(uri, artifact_store=artifact_store).load(TaskIndex)
    assert (loaded.max_task_id, loaded.task_count) == (12, 4)
    assert loaded.find(["md5:a", "md5:b"]) == {
        "md5:a": IndexedTask(10, "s3://b/batch_1/a.png", "batch_1"),
        "md5:b": IndexedTask(11, "s3://b/batch_2/b.png", "batch_2"),
    }


def test_batch_tasks_dedupe_by_content_and_come_back_by_task_id():
    tasks = BatchTasks()
    assert tasks.unseen(["md5:a", "md5:b"]) == ["md5:a", "md5:b"]
    tasks.add([(None, "s3://b/a.png", "md5:a", "s3://b/a.png"), (3, "s3://b/b.png", "md5:b", "x")])
    assert tasks.unseen(["md5:c", "md5:b", "md5:a"]) == ["md5:c"]
    tasks.assign([("md5:a", 5)])  # created after md5:b's task, which already existed
    assert list(tasks) == [
        BatchTask(3, "s3://b/b.png", "md5:b", "x"),
        BatchTask(5, "s3://b/a.png", "md5:a", "s3://b/a.png"),
    ]
    with pytest.raises(sqlite3.IntegrityError, match="UNIQUE"):
        tasks.add([(6, "s3://b/a2.png", "md5:a", "s3://b/a2.png")])
    assert len(tasks) == 2


def test_a_sync_report_round_trips_with_its_tasks(artifact_store):
    assert materializer_registry[SyncReport] is SyncReportMaterializer
    tasks = BatchTasks()
    tasks.add([(2, "s3://b/2.png", "md5:2", "s3://b/2.png"), (1, "s3://b/1.png", "md5:1", "t")])
    report = SyncReport(
        project_id=3,
        batch="batch_1",
        listed=3,
        created=1,
        already_present=2,
        skipped_keys=["batch_1/notes.txt"],
        problems=["empty text"],
        tasks=tasks,
    )
    uri = f"{artifact_store.path}/batch_tasks/1"
    artifact_store.makedirs(uri)
    SyncReportMaterializer(uri, artifact_store=artifact_store).save(report)
    loaded = SyncReportMaterializer(uri, artifact_store=artifact_store).load(SyncReport)
    assert loaded.model_dump(exclude={"tasks"}) == report.model_dump(exclude={"tasks"})
    assert [task.task_id for task in loaded.tasks] == [1, 2]
    assert list(loaded.tasks) == list(report.tasks)


def test_predictions_keep_their_order_and_take_new_scores():
    predictions = TaskPredictions()
    region = [{"from_name": "label", "to_name": "image", "type": "choices", "value": {}}]
    predictions.add([TaskPrediction(9, region, 0.9), TaskPrediction(4, [], 0.2)])
    predictions.add(iter([TaskPrediction(6, region, 0.5)]))
    predictions.rescore([0.1, 0.2, 0.3])
    assert list(predictions) == [
        TaskPrediction(9, region, 0.1),
        TaskPrediction(4, [], 0.2),
        TaskPrediction(6, region, 0.3),
    ]
    with pytest.raises(ValueError, match="2 scores for 3 predictions"):
        predictions.rescore([0.1, 0.2])
    with pytest.raises(sqlite3.IntegrityError):
        predictions.add([TaskPrediction(4, [], 0.7)])  # one prediction per task


def test_batch_predictions_round_trip_with_their_predictions(artifact_store):
    assert materializer_registry[BatchPredictions] is BatchPredictionsMaterializer
    predictions = TaskPredictions()
    predictions.add([TaskPrediction(2, [{"value": {"choices": ["7"]}}], 0.4)])
    batch = BatchPredictions(
        project_id=5,
        model_version="digits:3",
        strategy="uncertainty",
        predictions=predictions,
        already_predicted=1,
        unreadable=["s3://b/batch_1/broken.png"],
    )
    uri = f"{artifact_store.path}/batch_predictions/1"
    artifact_store.makedirs(uri)
    saver = BatchPredictionsMaterializer(uri, artifact_store=artifact_store)
    saver.save(batch)
    loaded = BatchPredictionsMaterializer(uri, artifact_store=artifact_store).load(BatchPredictions)
    assert loaded.model_dump(exclude={"predictions"}) == batch.model_dump(exclude={"predictions"})
    assert list(loaded.predictions) == list(predictions)
    assert saver.extract_metadata(batch)["predictions"] == 1


def stored_sync_report(artifact_store, name):
    """The URI of a sync report saved as the loop saves one."""
    tasks = BatchTasks()
    tasks.add([(1, "s3://b/1.png", "md5:1", "s3://b/1.png")])
    report = SyncReport(
        project_id=1, batch="b", listed=1, created=1, already_present=0, tasks=tasks
    )
    uri = f"{artifact_store.path}/batch_tasks/{name}"
    artifact_store.makedirs(uri)
    SyncReportMaterializer(uri, artifact_store=artifact_store).save(report)
    return uri


def tamper(path, *statements):
    db = sqlite3.connect(path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


@pytest.mark.parametrize(
    ("statements", "problem"),
    [
        (
            ["ALTER TABLE tasks ADD COLUMN note TEXT"],
            r"its table 'tasks' is defined as '[^']*note TEXT\)",
        ),
        (
            [
                "CREATE TABLE log (line TEXT)",
                "CREATE TRIGGER spy AFTER UPDATE ON tasks BEGIN "
                "INSERT INTO log VALUES (new.uri); END",
            ],
            "it holds the table 'log', which the loop never creates",
        ),
        (
            ["CREATE TRIGGER spy AFTER UPDATE ON tasks BEGIN SELECT 1; END"],
            "it holds the trigger 'spy', which the loop never creates",
        ),
        (
            ["CREATE VIEW everything AS SELECT * FROM tasks"],
            "it holds the view 'everything'",
        ),
        (["DROP TABLE tasks", "CREATE TABLE other (x)"], "it holds the table 'other'"),
        (["DROP TABLE tasks"], "it lacks the table 'tasks'"),
    ],
)
def test_a_table_whose_schema_is_not_the_loops_is_refused(artifact_store, statements, problem):
    uri = stored_sync_report(artifact_store, "schema")
    table = f"{uri}/table.sqlite"
    tamper(table, *statements)
    with pytest.raises(ArtifactError, match=r"table\.sqlite: " + problem) as info:
        SyncReportMaterializer(uri, artifact_store=artifact_store).load(SyncReport)
    assert "\n" not in str(info.value)


def test_a_file_that_is_not_a_database_is_refused(artifact_store):
    uri = stored_sync_report(artifact_store, "garbage")
    with open(f"{uri}/table.sqlite", "wb") as handle:
        handle.write(b"\x80\x04 not sqlite at all" * 100)
    with pytest.raises(ArtifactError, match="it is not a SQLite database"):
        SyncReportMaterializer(uri, artifact_store=artifact_store).load(SyncReport)


def test_a_refused_table_leaves_no_scratch_file(artifact_store, monkeypatch, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    uri = stored_sync_report(artifact_store, "scratch")
    tamper(f"{uri}/table.sqlite", "CREATE VIEW v AS SELECT 1")
    with pytest.raises(ArtifactError):
        SyncReportMaterializer(uri, artifact_store=artifact_store).load(SyncReport)
    assert [path.name for path in scratch.iterdir()] == []


def test_a_predictions_table_with_another_schema_is_refused(artifact_store):
    predictions = TaskPredictions()
    predictions.add([TaskPrediction(2, [], 0.4)])
    batch = BatchPredictions(project_id=5, model_version="m:1", predictions=predictions)
    uri = f"{artifact_store.path}/batch_predictions/schema"
    artifact_store.makedirs(uri)
    BatchPredictionsMaterializer(uri, artifact_store=artifact_store).save(batch)
    tamper(f"{uri}/table.sqlite", "CREATE INDEX by_score ON predictions (score)")
    with pytest.raises(ArtifactError, match="it holds the index 'by_score'"):
        BatchPredictionsMaterializer(uri, artifact_store=artifact_store).load(BatchPredictions)


def stored_index(artifact_store, name):
    index = TaskIndex("http://ls", 4)
    index.extend(refs(2))
    uri = f"{artifact_store.path}/task_index/{name}"
    artifact_store.makedirs(uri)
    TaskIndexMaterializer(uri, artifact_store=artifact_store).save(index)
    return uri


@pytest.mark.parametrize(
    ("statements", "problem"),
    [
        (
            ["CREATE TRIGGER t AFTER INSERT ON tasks BEGIN DELETE FROM meta; END"],
            "it holds the trigger 't'",
        ),
        (["DELETE FROM meta WHERE key = 'max_task_id'"], r"meta table is malformed \(KeyError"),
        (["UPDATE meta SET value = 'x' WHERE key = 'task_count'"], r"malformed \(ValueError"),
    ],
)
def test_a_task_index_whose_file_is_not_the_loops_is_refused(artifact_store, statements, problem):
    uri = stored_index(artifact_store, "tampered")
    tamper(f"{uri}/task_index.sqlite", *statements)
    with pytest.raises(ArtifactError, match=r"task_index\.sqlite: .*" + problem):
        TaskIndexMaterializer(uri, artifact_store=artifact_store).load(TaskIndex)


@pytest.mark.parametrize(
    ("stored", "materializer", "data_type", "kind"),
    [
        (stored_index, TaskIndexMaterializer, TaskIndex, "a task index"),
        (stored_sync_report, SyncReportMaterializer, SyncReport, "a report with a table"),
    ],
)
def test_a_table_folder_holding_another_file_is_refused(
    artifact_store, stored, materializer, data_type, kind
):
    uri = stored(artifact_store, "extra")
    with open(f"{uri}/table.sqlite-journal", "wb") as handle:
        handle.write(b"journal")
    with pytest.raises(ArtifactError, match=rf"holds 'table\.sqlite-journal', which {kind}"):
        materializer(uri, artifact_store=artifact_store).load(data_type)
