"""The whole loop against the real Label Studio and the cloud stand-ins the tests start."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from zenml.client import Client
from zenml.enums import ModelStages

import run
from annotation_loop import demo, image_classification
from annotation_loop.labelstudio import LabelStudioClient, PredictionIn
from annotation_loop.oracle import OracleTask, label_with_truth
from annotation_loop.settings import CLOUDS, Settings
from annotation_loop.storage import ObjectStore

pytestmark = pytest.mark.integration

BATCH_SIZE = 40


def project_tasks(settings: Settings, project_id: int) -> list[dict]:
    """Every task with its predictions and annotations, straight from the REST API."""
    response = httpx.get(
        f"{settings.label_studio_url}/api/tasks",
        params={"project": project_id, "page_size": 10_000, "fields": "all"},
        headers={"Authorization": f"Token {settings.label_studio_api_key.get_secret_value()}"},
        timeout=60,
    )
    response.raise_for_status()
    body = response.json()
    return body["tasks"] if isinstance(body, dict) else body


def oracle_labels(client, settings, cloud, outcome, truth):
    prefix = settings.data_source(cloud).dataset_uri + "/"
    tasks = [
        OracleTask(task_id, uri.removeprefix(prefix), (outcome.predictions or {}).get(task_id))
        for task_id, uri in (outcome.task_uris or {}).items()
    ]
    return label_with_truth(client, tasks, truth)


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_loop_end_to_end(cloud_settings, cloud):
    started = datetime.now(UTC).replace(tzinfo=None)
    settings = cloud_settings(cloud)
    store = ObjectStore(settings.data_source(cloud))
    store.ensure_bucket()
    truth = demo.seed_mnist_batches(store, batches=3, batch_size=BATCH_SIZE, seed=1)
    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )

    # Nothing labelled: no training, no model version.
    first = run.run_training(cloud, settings, rerun=False)
    assert "No annotations yet" in first.message
    assert first.model_version is None

    # Inference before any model: tasks, no pre-annotations; a re-run adds nothing.
    synced = run.run_inference(cloud, settings, rerun=False)
    assert synced.batch == "batch_1"
    assert len(synced.task_uris) == BATCH_SIZE
    assert synced.model_version is None
    again = run.run_inference(cloud, settings, rerun=False)
    assert again.task_uris == synced.task_uris
    project_id = client.get_or_create_project(
        settings.project_name, image_classification.label_config(settings.labels)
    )
    assert len(project_tasks(settings, project_id)) == BATCH_SIZE

    oracle_labels(client, settings, cloud, synced, truth)
    trained = run.run_training(cloud, settings, rerun=True)
    assert trained.model_version == "1"
    assert trained.promoted is True, "the first model has nothing to beat"
    assert trained.labelled_items == BATCH_SIZE
    assert trained.validation_accuracy is not None and trained.validation_accuracy > 0.2

    # No new annotations: no run, no new model version.
    idle = run.run_training(cloud, settings, rerun=True)
    assert "No new annotations" in idle.message
    versions = Client().list_model_versions(model=settings.model_name)
    assert versions.total == 1

    # Next batch gets pre-annotations of the production version, with scores.
    inferred = run.run_inference(cloud, settings, rerun=True)
    assert inferred.batch == "batch_2"
    model_version = f"{settings.model_name}:1"
    assert inferred.model_version == model_version
    assert len(inferred.predictions) == BATCH_SIZE
    tasks = {t["id"]: t for t in project_tasks(settings, project_id)}
    for task_id in inferred.task_uris:
        (prediction,) = tasks[task_id]["predictions"]
        assert prediction["model_version"] == model_version
        assert 0 < prediction["score"] <= 1

    # batch_1 was synced before a model existed; inferring it again now predicts it, once.
    backfill = run.run_inference(cloud, settings, rerun=False)
    assert backfill.batch == "batch_1" and len(backfill.predictions) == BATCH_SIZE
    repeat = run.run_inference(cloud, settings, rerun=False)
    assert repeat.predictions == {}
    tasks = project_tasks(settings, project_id)
    assert all(len(t["predictions"]) == 1 for t in tasks)

    report = oracle_labels(client, settings, cloud, inferred, truth)
    assert report.accepted + report.corrected == BATCH_SIZE
    second = run.run_training(cloud, settings, rerun=True)
    assert second.model_version == "2"
    assert second.labelled_items == 2 * BATCH_SIZE
    production = Client().get_model_version(settings.model_name, ModelStages.PRODUCTION)
    v2 = Client().get_model_version(settings.model_name, "2")
    logged = v2.run_metadata["validation"]
    expected_winner = "2" if logged["accuracy"] > logged["production_accuracy"] else "1"
    assert second.promoted is (expected_winner == "2")
    assert production.name == expected_winner

    # Every batch synced: --rerun says so instead of redoing work.
    run.run_inference(cloud, settings, rerun=True)  # batch_3
    done = run.run_inference(cloud, settings, rerun=True)
    assert done.batch is None and "synced already" in done.message

    # Nothing travelled between steps through local disk: every artifact is in the store.
    runs = Client().list_pipeline_runs(created=f"gte:{started:%Y-%m-%d %H:%M:%S}", size=100)
    uris = [
        artifact.uri
        for pipeline_run in runs.items
        for step in pipeline_run.steps.values()
        for artifacts in step.outputs.values()
        for artifact in artifacts
    ]
    assert len(runs.items) == 8 and len(uris) > 20
    assert all(uri.startswith(settings.artifact_store_uri(cloud)) for uri in uris)


def test_half_finished_uploads_complete_without_duplicates(cloud_settings):
    settings = cloud_settings("local")
    store = ObjectStore(settings.data_source("local"))
    truth = demo.seed_mnist_batches(store, batches=2, batch_size=BATCH_SIZE, seed=2)
    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )
    project_id = client.get_or_create_project(
        settings.project_name, image_classification.label_config(settings.labels)
    )
    # A sync that died after importing the first half of the batch.
    listing = store.list_batch("batch_1")
    half = listing.objects[: BATCH_SIZE // 2]
    client.import_tasks(
        project_id,
        [image_classification.task_data(o, store.label_studio_uri(o.uri)) for o in half],
    )
    synced = run.run_inference("local", settings, rerun=False)
    assert len(synced.task_uris) == BATCH_SIZE
    assert len(project_tasks(settings, project_id)) == BATCH_SIZE

    oracle_labels(client, settings, "local", synced, truth)
    assert run.run_training("local", settings, rerun=False).model_version == "1"
    # An upload of predictions that died half-way: the re-run pushes only the rest.
    model_version = f"{settings.model_name}:1"
    second_batch = run.run_inference("local", settings, rerun=True)
    assert len(second_batch.predictions) == BATCH_SIZE
    batch_1_ids = sorted(synced.task_uris)
    client.import_predictions(
        project_id,
        [
            PredictionIn(t, image_classification.result_for_label("3"), 0.5, model_version)
            for t in batch_1_ids[: BATCH_SIZE // 2]
        ],
    )
    resumed = run.run_inference("local", settings, rerun=False)
    assert sorted(resumed.predictions) == batch_1_ids[BATCH_SIZE // 2 :]
    counts = [len(t["predictions"]) for t in project_tasks(settings, project_id)]
    assert counts == [1] * (2 * BATCH_SIZE)
