"""The pipelines are the loop: run straight from Python (as a schedule, the dashboard or a
remote orchestrator runs them, with no CLI and no application layer), they keep its rules."""

from __future__ import annotations

import pytest
from zenml.client import Client
from zenml.enums import ExecutionStatus

from annotation_loop.app.environment import prepare_stack
from annotation_loop.app.project import project_spec
from annotation_loop.app.training import training_parameters
from annotation_loop.data.storage import ObjectStore
from annotation_loop.vision.mnist import seed_mnist_batches
from pipelines import inference_pipeline, training_pipeline

pytestmark = pytest.mark.integration


def model_versions(model_name: str) -> int:
    try:
        return Client().list_model_versions(model=model_name).total
    except KeyError:  # the model itself was never registered
        return 0


def test_the_training_pipeline_with_nothing_new_registers_no_model_version(cloud_settings):
    settings = cloud_settings("local")
    store = ObjectStore(settings.data_source("local"))
    seed_mnist_batches(store, batches=1, batch_size=8, seed=3)
    prepare_stack("local", settings)
    project = project_spec("local", settings)
    parameters = training_parameters(settings).model_dump()

    run = training_pipeline(project=project, **parameters)

    assert run.status == ExecutionStatus.COMPLETED
    assert model_versions(settings.model_name) == 0
    decision = Client().get_pipeline_run(run.id).run_metadata["training_decision"]
    assert decision["train"] is False and "No annotations yet" in decision["reason"]
    # Tasks but still no labels: the same.
    inference_pipeline(project=project, model_name=settings.model_name)
    again = training_pipeline(project=project, **parameters)
    assert model_versions(settings.model_name) == 0
    decision = Client().get_pipeline_run(again.id).run_metadata["training_decision"]
    assert decision == {
        "train": False,
        "reason": decision["reason"],
        "labelled_items": 0,
        "changed_items": 0,
    }
