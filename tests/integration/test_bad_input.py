"""Each bad input gives one clear line and loses nothing (real servers, no mocks)."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from annotation_loop import app
from annotation_loop.clouds.cors import missing_cors_fix
from annotation_loop.data.storage import ObjectStore
from annotation_loop.errors import (
    ConfigurationError,
    LabelStudioAuthError,
    LabelStudioUnreachable,
    StorageError,
    UnknownLabelError,
)
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.settings import Settings
from annotation_loop.task_types.choices import result_for_label
from annotation_loop.vision.mnist import seed_mnist_batches

pytestmark = pytest.mark.integration


def one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert message and "\n" not in message
    return message


def test_label_studio_down_names_the_url(cloud_settings):
    settings = cloud_settings("local").model_copy(update={"label_studio_url": "http://127.0.0.1:9"})
    with pytest.raises(LabelStudioUnreachable) as exc:
        app.train("local", settings, rerun=False)
    assert "http://127.0.0.1:9" in one_line(exc)


def test_wrong_api_key(cloud_settings):
    settings = cloud_settings("local").model_copy(
        update={"label_studio_api_key": SecretStr("0" * 40)}
    )
    with pytest.raises(LabelStudioAuthError) as exc:
        app.infer("local", settings, rerun=False)
    assert "API key" in one_line(exc)


def test_wrong_s3_keys_and_unreachable_s3(cloud_settings, monkeypatch):
    settings = cloud_settings("aws")
    ObjectStore(settings.data_source("aws")).ensure_bucket()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "wrong")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong")
    with pytest.raises(StorageError) as exc:
        ObjectStore(settings.data_source("aws")).list_batches()
    assert "AWS_ACCESS_KEY_ID" in one_line(exc)

    down = settings.model_copy(update={"s3_endpoint_url": "http://127.0.0.1:9"})
    with pytest.raises(StorageError) as exc:
        ObjectStore(down.data_source("aws")).list_batches()
    assert "http://127.0.0.1:9" in one_line(exc)


@pytest.mark.parametrize(
    ("cloud", "setting"),
    [("aws", "LOOP_S3_BUCKET"), ("gcp", "LOOP_GCS_BUCKET"), ("azure", "LOOP_AZURE_CONTAINER")],
)
def test_a_bucket_that_does_not_exist(cloud_settings, cloud, setting):
    settings = cloud_settings(cloud)  # the bucket is never created
    with pytest.raises(StorageError) as exc:
        app.infer(cloud, settings, rerun=False)
    message = one_line(exc)
    assert settings.bucket_uri(cloud) in message and setting in message


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_a_prefix_without_images(cloud_settings, cloud):
    settings = cloud_settings(cloud)
    store = ObjectStore(settings.data_source(cloud))
    store.ensure_bucket()
    store.write_bytes("batch_1/readme.txt", b"no images")
    with pytest.raises(StorageError) as exc:
        app.infer(cloud, settings, rerun=False)
    assert "no JPEG/PNG images" in one_line(exc)


@pytest.mark.parametrize("cloud", ["aws", "gcp", "azure"])
def test_missing_cors_rules_are_reported_with_the_fix(cloud_settings, cloud):
    settings = cloud_settings(cloud)
    store = ObjectStore(settings.data_source(cloud))
    store.ensure_bucket()
    fix = missing_cors_fix(settings.data_source(cloud))
    assert fix is not None and "cors" in fix.lower()


def test_malformed_credentials_stop_before_anything_is_registered(cloud_settings, tmp_path):
    key = tmp_path / "key.json"
    key.write_text("{not json")
    gcp = cloud_settings("gcp").model_copy(update={"google_application_credentials": key})
    with pytest.raises(ConfigurationError) as exc:
        app.train("gcp", gcp, rerun=False)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in one_line(exc)
    azure = cloud_settings("azure").model_copy(
        update={"azure_storage_connection_string": SecretStr("AccountName=devstoreaccount1")}
    )
    with pytest.raises(ConfigurationError) as exc:
        app.infer("azure", azure, rerun=False)
    assert "AccountKey" in one_line(exc)


def test_an_unknown_cloud_is_a_usage_error(run_cli):
    unknown = run_cli("mars", "--train")
    assert unknown.returncode == 2 and "No such command 'mars'" in unknown.stderr


def test_an_unknown_task_type_is_a_usage_error_and_a_one_line_setting_error(run_cli):
    unknown = run_cli("local", "--train", "--task", "audio")
    assert unknown.returncode == 2 and "'audio' is not one of 'image', 'text', 'ner'" in (
        unknown.stderr
    )
    with pytest.raises(ConfigurationError) as exc:
        Settings(task="audio")
    assert "LOOP_TASK to one of image, text, ner" in one_line(exc)


def test_unknown_label_in_an_annotation_stops_training(cloud_settings):
    settings = cloud_settings("local")
    store = ObjectStore(settings.data_source("local"))
    seed_mnist_batches(store, batches=1, batch_size=10, seed=3)
    synced = app.infer("local", settings, rerun=False)
    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )
    task_id = synced.tasks[0].task_id
    client.create_annotation(task_id, result_for_label("eleven", "image"))
    with pytest.raises(UnknownLabelError) as exc:
        app.train("local", settings, rerun=False)
    assert "'eleven'" in one_line(exc)


def test_corrupt_images_are_skipped_and_empty_batches_refused(cloud_settings):
    settings = cloud_settings("local")
    store = ObjectStore(settings.data_source("local"))
    truth = seed_mnist_batches(store, batches=2, batch_size=12, seed=4)
    store.write_bytes("batch_2/corrupt.png", b"this is not a png")
    store.write_bytes("batch_3/notes.txt", b"no images here")

    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )
    first = app.infer("local", settings, rerun=False)
    prefix = store.source.dataset_uri + "/"
    for task_id, uri in ((t.task_id, t.uri) for t in first.tasks):
        client.create_annotation(
            task_id, result_for_label(truth[uri.removeprefix(prefix)], "image")
        )
    app.train("local", settings, rerun=False)

    second = app.infer("local", settings, rerun=True)
    assert second.batch == "batch_2"
    assert len(second.tasks) == 13, "the corrupt file still becomes a task for people"
    assert len(second.predictions) == 12, "everything but the corrupt file is pre-annotated"

    with pytest.raises(StorageError) as exc:
        app.infer("local", settings, rerun=True)
    assert "batch_3" in one_line(exc) and "no JPEG/PNG images" in one_line(exc)
