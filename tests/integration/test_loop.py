"""The whole loop against the real Label Studio and the cloud stand-ins the tests start."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from support import pre_annotations, project_tasks
from zenml.client import Client
from zenml.enums import ModelStages

from annotation_loop import app
from annotation_loop.app.demo import label_batch_with_oracle
from annotation_loop.app.project import project_spec
from annotation_loop.app.training import training_parameters
from annotation_loop.data.storage import ObjectStore
from annotation_loop.labelstudio import LabelStudioClient, PredictionIn
from annotation_loop.settings import CLOUDS
from annotation_loop.task_types import get_task_type
from annotation_loop.task_types.choices import result_for_label
from annotation_loop.vision.mnist import seed_mnist_batches
from pipelines import training_pipeline

pytestmark = pytest.mark.integration

BATCH_SIZE = 40


@pytest.mark.parametrize("cloud", CLOUDS)
def test_the_loop_end_to_end(cloud_settings, cloud):
    started = datetime.now(UTC).replace(tzinfo=None)
    settings = cloud_settings(cloud)
    store = ObjectStore(settings.data_source(cloud))
    store.ensure_bucket()
    truth = seed_mnist_batches(store, batches=3, batch_size=BATCH_SIZE, seed=1)
    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )

    # Nothing labelled: no training, no model version.
    first = app.train(cloud, settings, rerun=False)
    assert "No annotations yet" in first.message
    assert first.model_version is None

    # Inference before any model: tasks, no pre-annotations; a re-run adds nothing.
    synced = app.infer(cloud, settings, rerun=False)
    assert synced.batch == "batch_1"
    assert len(synced.tasks) == BATCH_SIZE
    assert synced.model_version is None
    again = app.infer(cloud, settings, rerun=False)
    assert again.tasks == synced.tasks
    project_id = client.get_or_create_project(
        settings.project_name, get_task_type("image").label_config(settings.labels)
    )
    assert len(project_tasks(settings, project_id)) == BATCH_SIZE

    label_batch_with_oracle(client, settings, cloud, synced, truth)
    trained = app.train(cloud, settings, rerun=True)
    assert trained.model_version == "1"
    assert trained.promoted is True, "the first model has nothing to beat"
    assert trained.labelled_items == BATCH_SIZE
    assert trained.validation_score is not None and trained.validation_score > 0.2

    # No new annotations: no run, no new model version.
    idle = app.train(cloud, settings, rerun=True)
    assert "No new annotations" in idle.message
    assert Client().list_model_versions(model=settings.model_name).total == 1
    # ... whoever starts the pipeline: run straight from Python, it stops at the same step.
    direct = training_pipeline(
        project=project_spec(cloud, settings), **training_parameters(settings).model_dump()
    )
    assert Client().list_model_versions(model=settings.model_name).total == 1
    reason = Client().get_pipeline_run(direct.id).run_metadata["training_decision"]["reason"]
    assert "No new annotations" in reason

    # Next batch gets pre-annotations of the production version, with scores.
    inferred = app.infer(cloud, settings, rerun=True)
    assert inferred.batch == "batch_2"
    model_version = f"{settings.model_name}:1"
    assert inferred.model_version == model_version
    assert len(inferred.predictions) == BATCH_SIZE
    tasks = {t["id"]: t for t in project_tasks(settings, project_id)}
    for task_id in (t.task_id for t in inferred.tasks):
        (prediction,) = pre_annotations(tasks[task_id])
        assert prediction["model_version"] == model_version
        assert 0 < prediction["score"] <= 1

    # batch_1 was synced before a model existed; inferring it again now predicts it, once.
    backfill = app.infer(cloud, settings, rerun=False)
    assert backfill.batch == "batch_1" and len(backfill.predictions) == BATCH_SIZE
    repeat = app.infer(cloud, settings, rerun=False)
    assert repeat.predictions == {}
    tasks = project_tasks(settings, project_id)
    assert all(len(pre_annotations(t)) == 1 for t in tasks)

    report = label_batch_with_oracle(client, settings, cloud, inferred, truth)
    assert report.accepted + report.corrected == BATCH_SIZE
    second = app.train(cloud, settings, rerun=True)
    assert second.model_version == "2"
    assert second.labelled_items == 2 * BATCH_SIZE
    production = Client().get_model_version(settings.model_name, ModelStages.PRODUCTION)
    v2 = Client().get_model_version(settings.model_name, "2")
    validation, promotion = v2.run_metadata["validation"], v2.run_metadata["promotion"]
    assert promotion["production_version"] == "1"
    expected_winner = "2" if validation["accuracy"] > promotion["production_score"] else "1"
    assert second.promoted is (expected_winner == "2")
    assert production.name == expected_winner

    # Every batch synced: --rerun says so instead of redoing work.
    app.infer(cloud, settings, rerun=True)  # batch_3
    done = app.infer(cloud, settings, rerun=True)
    assert done.batch is None and "synced already" in done.message

    # Nothing travelled between steps through local disk: every artifact is in the store.
    listed = Client().list_pipeline_runs(created=f"gte:{started:%Y-%m-%d %H:%M:%S}", size=100)
    # The filter has whole seconds: the previous test's last run may share this one's first.
    runs = [run for run in listed.items if run.created >= started]
    uris = [
        artifact.uri
        for pipeline_run in runs
        for step in pipeline_run.steps.values()
        for artifacts in step.outputs.values()
        for artifact in artifacts
    ]
    # Every command above is a run, those that found nothing to do included (12).
    assert len(runs) == 12 and len(uris) > 20
    assert all(uri.startswith(settings.artifact_store_uri(cloud)) for uri in uris)


def test_half_finished_uploads_complete_without_duplicates(cloud_settings):
    settings = cloud_settings("local")
    store = ObjectStore(settings.data_source("local"))
    truth = seed_mnist_batches(store, batches=2, batch_size=BATCH_SIZE, seed=2)
    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )
    project_id = client.get_or_create_project(
        settings.project_name, get_task_type("image").label_config(settings.labels)
    )
    # A sync that died after importing the first half of the batch.
    image = get_task_type("image")
    half = image.list_items(store, "batch_1").items[: BATCH_SIZE // 2]
    client.import_tasks(project_id, [image.task_data(item, store) for item in half])
    synced = app.infer("local", settings, rerun=False)
    assert len(synced.tasks) == BATCH_SIZE
    assert len(project_tasks(settings, project_id)) == BATCH_SIZE

    label_batch_with_oracle(client, settings, "local", synced, truth)
    assert app.train("local", settings, rerun=False).model_version == "1"
    # An upload of predictions that died half-way: the re-run pushes only the rest.
    model_version = f"{settings.model_name}:1"
    second_batch = app.infer("local", settings, rerun=True)
    assert len(second_batch.predictions) == BATCH_SIZE
    batch_1_ids = sorted(t.task_id for t in synced.tasks)
    client.import_predictions(
        project_id,
        [
            PredictionIn(t, result_for_label("3", "image"), 0.5, model_version)
            for t in batch_1_ids[: BATCH_SIZE // 2]
        ],
    )
    resumed = app.infer("local", settings, rerun=False)
    assert sorted(resumed.predictions) == batch_1_ids[BATCH_SIZE // 2 :]
    counts = [len(pre_annotations(t)) for t in project_tasks(settings, project_id)]
    assert counts == [1] * (2 * BATCH_SIZE)
