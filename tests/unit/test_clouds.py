"""One module per cloud behind the `Cloud` protocol: each satisfies it, the registry's names,
schemes, stand-ins and settings agree with one another, and what each cloud derives from a
given Settings (bucket, artifact store, client variables, fsspec options, Label Studio
storage)."""

from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from annotation_loop import settings as settings_module
from annotation_loop.clouds import (
    BUCKET_CLOUDS,
    CLOUD_NAMES,
    CLOUDS,
    cloud_of,
    get_cloud,
    local_services,
)
from annotation_loop.clouds.aws import DEMO_S3_ACCESS_KEY, DEMO_S3_SECRET_KEY
from annotation_loop.clouds.base import BucketCloud, Cloud
from annotation_loop.clouds.gcp import GOOGLE_OFFLINE_ENV
from annotation_loop.data import storage
from annotation_loop.data.storage import DataSource
from annotation_loop.data.uris import LABEL_STUDIO_SCHEMES
from annotation_loop.errors import ConfigurationError, StorageError
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.settings import Settings

CREDENTIAL_VARIABLES = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
]
SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "p",
    "private_key": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
    "client_email": "loop@p.iam.gserviceaccount.com",
    "token_uri": "https://oauth2.googleapis.com/token",
}


@pytest.fixture(autouse=True)
def no_machine_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(f"LOOP_{name}", raising=False)


# -- the protocol and the registry -------------------------------------------------------------
@pytest.mark.parametrize("name", CLOUD_NAMES)
def test_each_cloud_module_satisfies_the_protocol(name: str) -> None:
    cloud = get_cloud(name)
    assert isinstance(cloud, Cloud) and cloud.name == name
    # Only clouds with buckets list pages; the local folder is walked on disk.
    assert isinstance(cloud, BucketCloud) == (name != "local")


def test_one_vocabulary_cloud_names_everywhere_and_schemes_only_for_uris(tmp_path: Path) -> None:
    assert CLOUD_NAMES == ("local", "aws", "gcp", "azure") == settings_module.CLOUDS
    settings = Settings(state_dir=tmp_path)
    for name, cloud in CLOUDS.items():
        uri = settings.bucket_uri(name)
        assert cloud_of(uri) is cloud and cloud_of(f"{uri}/dataset/batch_1/a.png") is cloud
        assert storage.DataSource(root_uri=uri, dataset="d").protocol == cloud.scheme
    assert set(storage.PAGE_LISTERS) == {cloud.scheme for cloud in BUCKET_CLOUDS.values()}
    # Label Studio can resolve every bucket cloud's URIs.
    assert {cloud.scheme for cloud in BUCKET_CLOUDS.values()} <= set(LABEL_STUDIO_SCHEMES)


def test_each_clouds_settings_and_stand_in_exist() -> None:
    from annotation_loop.dev.services import SERVICES

    for name, cloud in CLOUDS.items():
        setting = cloud.bucket_setting.removeprefix("LOOP_").lower()
        assert setting in Settings.model_fields, name
        if cloud.stand_in is None:
            assert name == "local"
            continue
        assert cloud.stand_in.service in SERVICES
        assert Settings.model_fields[cloud.stand_in.setting].annotation is bool
        assert cloud.stand_in.variable == f"LOOP_{cloud.stand_in.setting.upper()}"


def test_unknown_clouds_and_schemes_are_one_line_errors() -> None:
    with pytest.raises(ConfigurationError, match="Unknown cloud 'mars': use one of local, aws"):
        get_cloud("mars")
    with pytest.raises(StorageError, match=r"use s3://, gs://, az:// or a local folder"):
        cloud_of("http://example.com/data")


def test_local_services_are_label_studio_and_each_clouds_stand_in_once() -> None:
    assert local_services(["local"]) == ("label_studio",)
    assert local_services(["aws", "local", "aws", "gcp", "azure"]) == (
        "label_studio",
        "s3",
        "gcs",
        "azure",
    )


# -- what each cloud derives from Settings ------------------------------------------------------
def test_a_stand_in_setting_points_only_its_cloud_at_the_local_server() -> None:
    settings = Settings(local_s3=True, local_s3_port=1234, local_gcs_port=4321)
    assert settings.data_source("aws").endpoint_url == "http://127.0.0.1:1234"
    assert settings.aws_access_key_id == SecretStr(DEMO_S3_ACCESS_KEY)
    assert settings.aws_secret_access_key == SecretStr(DEMO_S3_SECRET_KEY)
    assert settings.data_source("gcp").endpoint_url is None
    assert settings.azure_storage_connection_string is None

    gcs = Settings(local_gcs=True, local_gcs_port=4321)
    assert gcs.data_source("gcp").endpoint_url == "http://127.0.0.1:4321"
    azure = Settings(local_azure=True, local_azure_port=10001)
    assert azure.azure_storage_connection_string is not None
    assert "BlobEndpoint=http://127.0.0.1:10001/devstoreaccount1;" in (
        azure.azure_storage_connection_string.get_secret_value()
    )


def test_artifact_stores(tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(SERVICE_ACCOUNT))
    settings = Settings(
        state_dir=tmp_path,
        s3_bucket="b",
        aws_region="eu-west-1",
        aws_access_key_id=SecretStr("id"),
        aws_secret_access_key=SecretStr("aws-secret-value"),
        gcs_bucket="g",
        google_application_credentials=key_file,
        azure_container="c",
        azure_storage_account_name="acct",
        azure_storage_sas_token=SecretStr("sv=1"),
    )
    aws = get_cloud("aws").artifact_store(settings)
    assert (aws.flavor, aws.path, aws.secret_name) == (
        "s3",
        "s3://b/zenml-artifacts",
        "annotation-loop-s3",
    )
    assert aws.configuration == {"client_kwargs": {"region_name": "eu-west-1"}}
    assert aws.secret_values == {
        "aws_access_key_id": "id",
        "aws_secret_access_key": "aws-secret-value",
    }
    gcp = get_cloud("gcp").artifact_store(settings)
    assert (gcp.flavor, gcp.path) == ("gcp", "gs://g/zenml-artifacts")
    assert json.loads(gcp.secret_values["token"]) == SERVICE_ACCOUNT
    azure = get_cloud("azure").artifact_store(settings)
    assert (azure.flavor, azure.path) == ("azure", "az://c/zenml-artifacts")
    assert azure.secret_values == {"account_name": "acct", "sas_token": "sv=1"}
    local = get_cloud("local").artifact_store(settings)
    assert (local.flavor, local.path, local.secret_name) == (
        "local",
        str(tmp_path / "artifacts"),
        None,
    )
    assert settings.artifact_store_uri("aws") == aws.path
    # Secret values stay out of logs and tracebacks.
    assert "aws-secret-value" not in repr(aws)


def test_an_s3_compatible_servers_endpoint_goes_to_the_artifact_store_and_the_client() -> None:
    settings = Settings(s3_endpoint_url="https://minio.internal")
    store = get_cloud("aws").artifact_store(settings)
    assert store.configuration["client_kwargs"]["endpoint_url"] == "https://minio.internal"
    assert store.secret_values == {}  # the environment's own credentials
    options = get_cloud("aws").storage_options(settings.data_source("aws"))
    assert options["client_kwargs"] == {
        "region_name": "us-east-1",
        "endpoint_url": "https://minio.internal",
    }
    assert options["session"] is not None


def test_each_clouds_client_environment(tmp_path: Path) -> None:
    assert get_cloud("local").client_environment(Settings()) == {}
    assert get_cloud("aws").client_environment(Settings()) == {}
    assert get_cloud("aws").client_environment(Settings(local_s3=True)) == {
        "AWS_ACCESS_KEY_ID": DEMO_S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": DEMO_S3_SECRET_KEY,
    }
    real_gcp = get_cloud("gcp").client_environment(
        Settings(google_application_credentials=tmp_path / "k.json")
    )
    assert real_gcp["GOOGLE_APPLICATION_CREDENTIALS"] == str(tmp_path / "k.json")
    assert "STORAGE_EMULATOR_HOST" not in real_gcp and real_gcp["NO_GCE_CHECK"] == "true"
    emulated = get_cloud("gcp").client_environment(Settings(local_gcs=True, local_gcs_port=1))
    assert emulated["STORAGE_EMULATOR_HOST"] == "http://127.0.0.1:1"
    assert GOOGLE_OFFLINE_ENV.items() <= emulated.items()
    azure = get_cloud("azure").client_environment(
        Settings(azure_storage_account_name="acct", azure_storage_account_key=SecretStr("k"))
    )
    assert azure == {"AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_STORAGE_ACCOUNT_KEY": "k"}


def test_settings_client_environment_is_every_clouds_and_holds_no_loop_settings() -> None:
    settings = Settings(
        local_s3=True,
        local_azure=True,
        label_studio_aws_access_key_id=SecretStr("ls-id"),
        label_studio_aws_secret_access_key=SecretStr("ls-secret"),
    )
    env = settings.client_environment()
    merged: dict[str, str] = {}
    for cloud in CLOUDS.values():
        merged.update(cloud.client_environment(settings))
    assert env == merged
    assert not [name for name in env if name.startswith("LOOP_")]


def test_settings_cross_a_process_boundary_as_loop_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """What a subprocess or a remote step is given recreates the same clouds, and holds
    what the cloud's client libraries read."""
    original = Settings(
        state_dir=tmp_path,
        local_gcs=True,
        local_gcs_port=4321,
        s3_bucket="b",
        aws_access_key_id=SecretStr("id"),
        aws_secret_access_key=SecretStr("secret"),
        azure_storage_connection_string=SecretStr("AccountName=a;AccountKey=k"),
    )
    for name, value in original.process_environment("gcp").items():
        monkeypatch.setenv(name, value)
    assert os.environ["STORAGE_EMULATOR_HOST"] == "http://127.0.0.1:4321"
    recreated = Settings()
    for cloud in CLOUD_NAMES:
        assert recreated.data_source(cloud) == original.data_source(cloud)
        assert get_cloud(cloud).artifact_store(recreated) == get_cloud(cloud).artifact_store(
            original
        )
    assert recreated.client_environment() == original.client_environment()


def test_gcs_emulators_are_read_without_credentials() -> None:
    emulator = DataSource(root_uri="gs://b", dataset="d", endpoint_url="http://127.0.0.1:1")
    assert get_cloud("gcp").storage_options(emulator) == {
        "endpoint_url": "http://127.0.0.1:1",
        "token": "anon",
    }
    assert get_cloud("gcp").storage_options(DataSource(root_uri="gs://b", dataset="d")) == {}


def test_a_local_folder_has_no_cors_rules_to_check(tmp_path: Path) -> None:
    source = Settings(state_dir=tmp_path).data_source("local")
    assert get_cloud("local").missing_cors_fix(source, Settings()) is None


# -- the Label Studio source storage fits the client's methods -----------------------------------
class RecordingClient:
    """Records each connect_* call, checked against LabelStudioClient's own signature."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def __getattr__(self, method: str) -> Any:
        def record(project_id: int, *args: Any, **kwargs: Any) -> int:
            inspect.signature(getattr(LabelStudioClient, method)).bind(
                None, project_id, *args, **kwargs
            )
            self.calls.append(method)
            return 7

        return record


def test_every_clouds_storage_is_connected_with_the_clients_own_signature(
    tmp_path: Path,
) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(SERVICE_ACCOUNT))
    settings = Settings(
        state_dir=tmp_path,
        aws_access_key_id=SecretStr("id"),
        aws_secret_access_key=SecretStr("secret"),
        google_application_credentials=key_file,
        local_azure=True,
    )
    client = RecordingClient()
    for name, cloud in CLOUDS.items():
        connection = cloud.label_studio_source(settings.data_source(name), settings)
        assert connection.storage is not None, name
        assert connection.storage.connect(client, 1) == 7  # type: ignore[arg-type]
    assert client.calls == [
        "connect_local_source",
        "connect_s3_source",
        "connect_gcs_source",
        "connect_azure_source",
    ]
