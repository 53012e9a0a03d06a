"""Which credentials Label Studio's source storage gets on a real cloud, and the warning when
they are the loop's own write keys. The client records the call instead of reaching a cloud
(the local stand-ins and the real Label Studio are in
tests/integration/test_read_only_storage_keys.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from annotation_loop.data import sync
from annotation_loop.data.storage import DataSource
from annotation_loop.data.sync import connect_source_storage
from annotation_loop.errors import ConfigurationError
from annotation_loop.settings import Settings

LOOP_AWS = {
    "aws_access_key_id": SecretStr("loop-id"),
    "aws_secret_access_key": SecretStr("loop-secret"),
}
LABEL_STUDIO_AWS = {
    "label_studio_aws_access_key_id": SecretStr("ls-id"),
    "label_studio_aws_secret_access_key": SecretStr("ls-secret"),
}
SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "p",
    "private_key": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
    "client_email": "",  # filled per account
    "token_uri": "https://oauth2.googleapis.com/token",
}
CREDENTIAL_VARIABLES = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "LOOP_LABEL_STUDIO_AWS_ACCESS_KEY_ID",
    "LOOP_LABEL_STUDIO_AWS_SECRET_ACCESS_KEY",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "LOOP_LABEL_STUDIO_GOOGLE_APPLICATION_CREDENTIALS",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "AZURE_STORAGE_ACCOUNT_KEY",
]


class RecordingClient:
    """Stands in for LabelStudioClient: records what each storage connection was given."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def connect_s3_source(self, project_id: int, **kwargs: Any) -> int:
        self.calls.append(("s3", kwargs))
        return 1

    def connect_gcs_source(self, project_id: int, **kwargs: Any) -> int:
        self.calls.append(("gcs", kwargs))
        return 1

    def connect_azure_source(self, project_id: int, **kwargs: Any) -> int:
        self.calls.append(("azure", kwargs))
        return 1


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch) -> list[DataSource]:
    """No credentials from the machine; the CORS checks a real bucket would get are recorded
    instead of calling the cloud."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    checked: list[DataSource] = []
    monkeypatch.setattr(
        sync, "warn_if_cors_missing", lambda source, settings: checked.append(source)
    )
    sync._warn_write_keys.cache_clear()
    return checked


def write_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "can also write and delete" in r.getMessage()]


def key_file(tmp_path: Path, email: str) -> Path:
    path = tmp_path / f"{email}.json"
    path.write_text(json.dumps({**SERVICE_ACCOUNT, "client_email": email}))
    return path


REAL_S3 = DataSource(root_uri="s3://bucket", dataset="mnist")


def test_the_loops_s3_keys_on_a_real_bucket_are_warned_about_once(
    caplog: pytest.LogCaptureFixture, clean: list[DataSource]
) -> None:
    client = RecordingClient()
    settings = Settings(**LOOP_AWS)
    with caplog.at_level(logging.WARNING):
        connect_source_storage(client, 1, REAL_S3, settings)  # type: ignore[arg-type]
        connect_source_storage(client, 1, REAL_S3, settings)  # type: ignore[arg-type]
    assert [kwargs["access_key"] for _, kwargs in client.calls] == ["loop-id", "loop-id"]
    assert client.calls[0][1]["bucket"] == "bucket" and client.calls[0][1]["prefix"] == "mnist"
    (warning,) = write_warnings(caplog)
    assert "iam-policy-label-studio-readonly.json" in warning
    assert "LOOP_LABEL_STUDIO_AWS_ACCESS_KEY_ID" in warning
    assert "loop-secret" not in caplog.text
    assert clean == [REAL_S3, REAL_S3], "a real AWS bucket's CORS rules are checked"


def test_read_only_s3_keys_go_to_label_studio_without_a_warning(
    caplog: pytest.LogCaptureFixture, clean: list[DataSource]
) -> None:
    client = RecordingClient()
    # An S3-compatible server of one's own (MinIO) is a real store too, but not AWS: its
    # CORS rules are not AWS's to check.
    minio = REAL_S3.model_copy(update={"endpoint_url": "https://minio.internal"})
    with caplog.at_level(logging.WARNING):
        connect_source_storage(  # type: ignore[arg-type]
            client, 1, minio, Settings(**LOOP_AWS, **LABEL_STUDIO_AWS)
        )
    ((_, kwargs),) = client.calls
    assert (kwargs["access_key"], kwargs["secret_key"]) == ("ls-id", "ls-secret")
    assert kwargs["endpoint_url"] == "https://minio.internal"
    assert not write_warnings(caplog) and not clean


def test_half_of_label_studios_key_pair_is_refused() -> None:
    half = Settings(**LOOP_AWS, label_studio_aws_secret_access_key=SecretStr("ls-secret"))
    with pytest.raises(ConfigurationError, match="set both") as error:
        connect_source_storage(RecordingClient(), 1, REAL_S3, half)  # type: ignore[arg-type]
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("LOOP_LABEL_STUDIO_AWS_SECRET_ACCESS_KEY is set without")


def test_without_keys_nothing_is_connected_and_the_log_says_why(
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = RecordingClient()
    with caplog.at_level(logging.WARNING):
        connect_source_storage(client, 1, REAL_S3, Settings())  # type: ignore[arg-type]
    assert not client.calls
    assert "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set" in caplog.text


def test_without_settings_the_process_environment_is_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What a pipeline step on a remote orchestrator has: its environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "env-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    client = RecordingClient()
    connect_source_storage(client, 1, REAL_S3)  # type: ignore[arg-type]
    assert client.calls[0][1]["access_key"] == "env-id"


def test_gcs_gets_label_studios_own_key_file(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    real_gcs = DataSource(root_uri="gs://bucket", dataset="mnist")
    loop = Settings(google_application_credentials=key_file(tmp_path, "loop"))
    client = RecordingClient()
    with caplog.at_level(logging.WARNING):
        connect_source_storage(client, 1, real_gcs, loop)  # type: ignore[arg-type]
    assert json.loads(client.calls[-1][1]["credentials_json"])["client_email"] == "loop"
    assert client.calls[-1][1]["presign"] is True
    assert "role-label-studio-readonly.yaml" in write_warnings(caplog)[0]

    caplog.clear()
    own = loop.model_copy(
        update={"label_studio_google_application_credentials": key_file(tmp_path, "ls")}
    )
    with caplog.at_level(logging.WARNING):
        connect_source_storage(client, 1, real_gcs, own)  # type: ignore[arg-type]
    assert json.loads(client.calls[-1][1]["credentials_json"])["client_email"] == "ls"
    assert not write_warnings(caplog)


def test_a_broken_label_studio_key_file_is_named_by_its_own_variable(tmp_path: Path) -> None:
    broken = tmp_path / "ls.json"
    broken.write_text("{")
    settings = Settings(label_studio_google_application_credentials=broken)
    real_gcs = DataSource(root_uri="gs://bucket", dataset="mnist")
    with pytest.raises(ConfigurationError, match="LOOP_LABEL_STUDIO_GOOGLE_APPLICATION_CRED"):
        connect_source_storage(RecordingClient(), 1, real_gcs, settings)  # type: ignore[arg-type]


def test_the_gcs_emulator_is_connected_without_a_key_and_without_presigning(
    caplog: pytest.LogCaptureFixture, clean: list[DataSource]
) -> None:
    emulator = DataSource(root_uri="gs://bucket", dataset="d", endpoint_url="http://127.0.0.1:1")
    client = RecordingClient()
    with caplog.at_level(logging.WARNING):
        connect_source_storage(client, 1, emulator, Settings())  # type: ignore[arg-type]
    ((_, kwargs),) = client.calls
    assert kwargs["credentials_json"] is None and kwargs["presign"] is False
    assert not write_warnings(caplog) and not clean


def test_azures_account_key_on_real_azure_is_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    real = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=x"
    client = RecordingClient()
    with caplog.at_level(logging.WARNING):
        connect_source_storage(  # type: ignore[arg-type]
            client,
            1,
            DataSource(root_uri="az://container", dataset="mnist"),
            Settings(azure_storage_connection_string=SecretStr(real)),
        )
    ((_, kwargs),) = client.calls
    assert (kwargs["account_name"], kwargs["container"], kwargs["presign"]) == (
        "acct",
        "container",
        True,
    )
    (warning,) = write_warnings(caplog)
    assert "cloud_config/azure/README.md" in warning and "a2V5" not in caplog.text


def test_azurite_is_proxied_through_its_own_endpoint_without_a_warning(
    caplog: pytest.LogCaptureFixture, clean: list[DataSource]
) -> None:
    client = RecordingClient()
    with caplog.at_level(logging.WARNING):
        connect_source_storage(  # type: ignore[arg-type]
            client,
            1,
            DataSource(root_uri="az://container", dataset="mnist"),
            Settings(local_azure=True, local_azure_port=10001),
        )
    ((_, kwargs),) = client.calls
    assert kwargs["presign"] is False
    assert kwargs["blob_endpoint"] == "http://127.0.0.1:10001/devstoreaccount1"
    assert not write_warnings(caplog) and not clean
