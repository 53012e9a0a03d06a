"""Each bad input gives one clear line and loses nothing (real servers, no mocks)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

import run
from annotation_loop import demo, image_classification
from annotation_loop.errors import (
    LabelStudioAuthError,
    LabelStudioUnreachable,
    StorageError,
    UnknownLabelError,
)
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.settings import Settings
from annotation_loop.storage import ObjectStore

pytestmark = pytest.mark.integration


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


def local_settings(services: Settings, unique_name: str) -> Settings:
    # Tests share the servers: each gets its own project, model, and data prefix.
    return services.model_copy(
        update={
            "project_name": unique_name,
            "model_name": unique_name.replace("-", "_"),
            "dataset": unique_name,
        }
    )


def test_label_studio_down_names_the_url(services, unique_name):
    settings = local_settings(services, unique_name).model_copy(
        update={"label_studio_url": "http://127.0.0.1:9"}
    )
    with pytest.raises(LabelStudioUnreachable) as exc:
        run.run_training("local", settings, rerun=False)
    assert "http://127.0.0.1:9" in one_line(exc)


def test_wrong_api_key(services, unique_name):
    settings = local_settings(services, unique_name).model_copy(
        update={"label_studio_api_key": SecretStr("0" * 40)}
    )
    with pytest.raises(LabelStudioAuthError) as exc:
        run.run_inference("local", settings, rerun=False)
    assert "API key" in one_line(exc)


def test_wrong_s3_keys_and_unreachable_s3(services, unique_name, monkeypatch):
    settings = local_settings(services, unique_name).model_copy(
        update={"s3_bucket": unique_name, "s3_endpoint_url": services.local_s3_endpoint_url}
    )
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "wrong")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(StorageError) as exc:
        ObjectStore(settings.data_source("aws")).list_batches()
    assert "AWS_ACCESS_KEY_ID" in one_line(exc)

    down = settings.model_copy(update={"s3_endpoint_url": "http://127.0.0.1:9"})
    with pytest.raises(StorageError) as exc:
        ObjectStore(down.data_source("aws")).list_batches()
    assert "http://127.0.0.1:9" in one_line(exc)


def test_unknown_and_unimplemented_clouds_are_one_line_errors():
    runner = CliRunner()
    unknown = runner.invoke(run.cli, ["mars", "--train"])
    assert unknown.exit_code != 0 and "No such command 'mars'" in unknown.output
    for cloud in ("gcp", "azure"):
        result = runner.invoke(run.cli, [cloud, "--train"])
        assert result.exit_code == 1
        assert result.output.strip().count("\n") == 0
        assert "not available yet" in result.output


def test_unknown_label_in_an_annotation_stops_training(services, unique_name):
    settings = local_settings(services, unique_name)
    store = ObjectStore(settings.data_source("local"))
    demo.seed_mnist_batches(store, batches=1, batch_size=10, seed=3)
    synced = run.run_inference("local", settings, rerun=False)
    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )
    task_id = next(iter(synced.task_uris))
    client.create_annotation(task_id, image_classification.result_for_label("eleven"))
    with pytest.raises(UnknownLabelError) as exc:
        run.run_training("local", settings, rerun=False)
    assert "'eleven'" in one_line(exc)


def test_corrupt_images_are_skipped_and_empty_batches_refused(services, unique_name):
    settings = local_settings(services, unique_name)
    store = ObjectStore(settings.data_source("local"))
    truth = demo.seed_mnist_batches(store, batches=2, batch_size=12, seed=4)
    store.write_bytes("batch_2/corrupt.png", b"this is not a png")
    store.write_bytes("batch_3/notes.txt", b"no images here")

    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )
    first = run.run_inference("local", settings, rerun=False)
    prefix = store.source.dataset_uri + "/"
    for task_id, uri in first.task_uris.items():
        client.create_annotation(
            task_id, image_classification.result_for_label(truth[uri.removeprefix(prefix)])
        )
    run.run_training("local", settings, rerun=False)

    second = run.run_inference("local", settings, rerun=True)
    assert second.batch == "batch_2"
    assert len(second.task_uris) == 13, "the corrupt file still becomes a task for people"
    assert len(second.predictions) == 12, "everything but the corrupt file is pre-annotated"

    with pytest.raises(StorageError) as exc:
        run.run_inference("local", settings, rerun=True)
    assert "batch_3" in one_line(exc) and "no JPEG/PNG" in one_line(exc)
