"""No annotation is lost to a failed run, and nothing a team puts in the project by hand stops
training (real Label Studio, the local ZenML stack)."""

from __future__ import annotations

import httpx
import pytest
from zenml.client import Client

from annotation_loop import app
from annotation_loop.app.demo import label_batch_with_oracle
from annotation_loop.data.storage import ObjectStore
from annotation_loop.errors import LoopError
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.settings import Settings
from annotation_loop.task_types import get_task_type
from annotation_loop.task_types.choices import result_for_label
from annotation_loop.task_types.image import ImageClassification
from annotation_loop.vision.mnist import seed_mnist_batches
from annotation_loop.zenml_integration.model_registry import SNAPSHOT_ARTIFACT

pytestmark = pytest.mark.integration

BATCH_SIZE = 12


def labelled_batch(settings: Settings) -> tuple[LabelStudioClient, app.InferenceOutcome]:
    """A synced batch of the `local` cloud, every task annotated with its true label."""
    store = ObjectStore(settings.data_source("local"))
    truth = seed_mnist_batches(store, batches=1, batch_size=BATCH_SIZE, seed=11)
    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )
    synced = app.infer("local", settings, rerun=False)
    label_batch_with_oracle(client, settings, "local", synced, truth)
    return client, synced


def test_a_run_that_fails_after_fetching_does_not_consume_the_annotations(
    cloud_settings, monkeypatch
):
    settings = cloud_settings("local")
    labelled_batch(settings)

    def crash(*args, **kwargs):
        raise LoopError("training crashed")

    with monkeypatch.context() as patch:
        patch.setattr(ImageClassification, "train", crash)
        with pytest.raises(LoopError, match="training crashed"):
            app.train("local", settings, rerun=False)
    failed = Client().get_model_version(settings.model_name, "1")
    assert failed.get_artifact(SNAPSHOT_ARTIFACT) is not None, "it did fetch the annotations"
    assert "validation" not in failed.run_metadata

    retried = app.train("local", settings, rerun=False)
    assert retried.model_version == "2", retried.message
    assert retried.labelled_items == BATCH_SIZE

    # Once a model was trained on them they are used: the next run has nothing to do.
    idle = app.train("local", settings, rerun=False)
    assert "No new annotations" in idle.message


def test_foreign_tasks_and_malformed_annotations_are_skipped_and_reported(cloud_settings):
    settings = cloud_settings("local")
    client, synced = labelled_batch(settings)
    project_id = client.get_or_create_project(
        settings.project_name, get_task_type("image").label_config(settings.labels)
    )
    token = settings.label_studio_api_key.get_secret_value()
    with httpx.Client(
        base_url=settings.label_studio_url, headers={"Authorization": f"Token {token}"}
    ) as raw:
        # Uploaded in the UI / imported by hand: Label Studio's own data, no identity.
        imported = raw.post(
            f"/api/projects/{project_id}/import",
            params={"return_task_ids": "true"},
            json=[
                {"image": "https://example.com/upload.png"},
                {"data": {"image": "/data/upload/1/a.png", "content_hash": 7, "uri": ["x"]}},
            ],
        )
        imported.raise_for_status()
        foreign_ids = imported.json()["task_ids"]
        for task_id in foreign_ids:
            client.create_annotation(task_id, result_for_label("3", "image"))
        # Malformed results on two of the loop's tasks, newer than their good annotations;
        # a third task has nothing but a malformed one.
        region = result_for_label("3", "image")[0]
        loop_ids = [t.task_id for t in synced.tasks]
        for task_id, value in zip(
            loop_ids[:3], [{}, {"choices": [3]}, {"choices": "3"}], strict=True
        ):
            if task_id == loop_ids[2]:
                annotation = raw.get(f"/api/tasks/{task_id}/annotations/").json()[0]
                raw.delete(f"/api/annotations/{annotation['id']}/").raise_for_status()
            client.create_annotation(task_id, [{**region, "value": value}])

    trained = app.train("local", settings, rerun=False)
    assert trained.model_version == "1", trained.message
    assert trained.labelled_items == BATCH_SIZE - 1, "all but the task with only a bad one"
    snapshot = (
        Client().get_model_version(settings.model_name, "1").get_artifact(SNAPSHOT_ARTIFACT).load()
    )
    merge = snapshot.last_merge
    assert (merge.foreign, merge.malformed) == (2, 3)
    assert set(snapshot.items) == set(loop_ids) - {loop_ids[2]}
    reported = " ".join(merge.problems)
    assert all(f"task {task_id}" in reported.lower() for task_id in [*foreign_ids, *loop_ids[:3]])
