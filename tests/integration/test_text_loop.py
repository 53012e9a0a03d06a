"""The loop for the text task types (classification, NER) against the real Label Studio."""

from __future__ import annotations

import json
import re

import pytest
from support import pre_annotations, project_tasks
from zenml.client import Client

from annotation_loop import app
from annotation_loop.app.demo import label_batch_with_oracle
from annotation_loop.data.storage import ObjectStore
from annotation_loop.errors import StorageError, UnknownLabelError
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.task_types import get_task_type
from annotation_loop.task_types.capabilities import demo_data_of
from annotation_loop.text.spans import Span, result_from_spans
from annotation_loop.zenml_integration.model_registry import latest_task_index

pytestmark = pytest.mark.integration

BATCH_SIZE = 24
METRICS = {"text": ("accuracy", "macro_f1"), "ner": ("precision", "recall", "f1")}


def whole_words(text: str, start: int, end: int) -> bool:
    """A span cuts no word: no letter or digit on both sides of either boundary."""

    def joins(i: int) -> bool:
        return 0 < i < len(text) and text[i - 1].isalnum() and text[i].isalnum()

    return not joins(start) and not joins(end)


@pytest.mark.parametrize(("task", "cloud"), [("text", "local"), ("ner", "aws")])
def test_the_text_loop_end_to_end(cloud_settings, task, cloud):
    settings = cloud_settings(cloud, task=task)
    task_type = get_task_type(task)
    store = ObjectStore(settings.data_source(cloud))
    store.ensure_bucket()
    truth = demo_data_of(task_type).seed_demo(store, batches=2, batch_size=BATCH_SIZE, seed=1)
    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )

    synced = app.infer(cloud, settings, rerun=False)
    assert synced.batch == "batch_1" and len(synced.tasks) == BATCH_SIZE
    assert app.infer(cloud, settings, rerun=False).tasks == synced.tasks, "idempotent"
    project_id = client.get_or_create_project(
        settings.project_name, task_type.label_config(settings.labels)
    )
    tasks = project_tasks(settings, project_id)
    assert len(tasks) == BATCH_SIZE
    assert all(t["data"]["text"] and "\r" not in t["data"]["text"] for t in tasks)

    label_batch_with_oracle(client, settings, cloud, synced, truth)
    trained = app.train(cloud, settings, rerun=True)
    assert trained.model_version == "1" and trained.promoted is True
    assert trained.metric == task_type.promotion_metric
    logged = Client().get_model_version(settings.model_name, "1").run_metadata["validation"]
    for metric in METRICS[task]:
        assert 0 <= logged[metric] <= 1

    inferred = app.infer(cloud, settings, rerun=True)
    assert inferred.batch == "batch_2"
    assert len(inferred.predictions) == BATCH_SIZE
    by_id = {t["id"]: t for t in project_tasks(settings, project_id)}
    for batch_task in inferred.tasks:
        (prediction,) = pre_annotations(by_id[batch_task.task_id])
        assert prediction["model_version"] == f"{settings.model_name}:1"
        assert 0 < prediction["score"] <= 1
        text = by_id[batch_task.task_id]["data"]["text"]
        for region in prediction["result"]:
            value = region["value"]
            if task == "ner":
                assert 0 < region["score"] <= 1, "every span carries its own score"
                assert value["text"] == text[value["start"] : value["end"]]
                assert whole_words(text, value["start"], value["end"])
            else:
                assert value["choices"][0] in settings.labels

    # The next sync starts from the index this one stored, in this cloud's artifact store.
    stored = latest_task_index(settings.label_studio_url, project_id)
    assert stored is not None and len(stored) == len(project_tasks(settings, project_id))

    report = label_batch_with_oracle(client, settings, cloud, inferred, truth)
    assert report.accepted + report.corrected == BATCH_SIZE
    second = app.train(cloud, settings, rerun=True)
    assert second.model_version == "2" and second.labelled_items == 2 * BATCH_SIZE


def test_bad_text_input_is_reported_and_nothing_is_lost(cloud_settings, caplog):
    """Empty texts, legacy encodings and long texts in the bucket; annotations whose spans do
    not match the text (skipped and reported) or use unknown labels (a setting to fix)."""
    settings = cloud_settings("local", task="ner")
    store = ObjectStore(settings.data_source("local"))
    long_text = " ".join(["filler"] * 400) + " Berlin"
    rows = [
        {"id": 1, "text": "Alice lives in Paris"},
        {"id": 2, "text": "   "},
        {"id": 3, "text": long_text},
        {"id": 4, "text": "Alice lives in Paris"},  # the same text again: one task
    ]
    store.write_bytes("batch_1/rows.jsonl", "\n".join(json.dumps(r) for r in rows).encode())
    store.write_bytes("batch_1/legacy.txt", "Café in Zürich".encode("cp1252"))
    store.write_bytes("batch_1/picture.png", b"not text")

    synced = app.infer("local", settings, rerun=False)
    texts = {t.input_ref for t in synced.tasks}
    assert texts == {"Alice lives in Paris", long_text, "Café in Zürich"}, "full, decoded"
    assert app.infer("local", settings, rerun=False).tasks == synced.tasks

    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )
    by_text = {t.input_ref: t.task_id for t in synced.tasks}
    paris = by_text["Alice lives in Paris"]
    client.create_annotation(
        paris,
        [
            {
                "from_name": "label",
                "to_name": "text",
                "type": "labels",
                "value": {"start": 15, "end": 20, "text": "Pariz", "labels": ["geo-loc"]},
            }
        ],
    )
    with caplog.at_level("WARNING", logger="annotation_loop.learning.annotations"):
        skipped = app.train("local", settings, rerun=False)
    assert "No annotations yet" in skipped.message, "the only annotation was skipped"
    [warning] = [r.getMessage() for r in caplog.records if "malformed" in r.getMessage()]
    assert "\n" not in warning and f"task {paris}" in warning and "Pariz" in warning

    client.create_annotation(
        paris, result_from_spans([Span(0, 5, "wizard")], "Alice lives in Paris")
    )
    with pytest.raises(UnknownLabelError, match=re.escape("'wizard'")):
        app.train("local", settings, rerun=False)


def test_a_batch_without_texts_says_what_it_found(cloud_settings):
    settings = cloud_settings("local", task="text")
    store = ObjectStore(settings.data_source("local"))
    store.write_bytes("batch_1/photo.png", b"not text")
    store.write_bytes("batch_1/rows.csv", b"id,text\n1,\n2,   \n")
    with pytest.raises(StorageError) as exc:
        app.infer("local", settings, rerun=False)
    message = str(exc.value)
    assert "\n" not in message and "no non-empty texts" in message
    assert "1 other files" in message and "rows.csv" in message
