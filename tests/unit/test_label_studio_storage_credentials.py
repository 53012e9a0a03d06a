"""Which credentials Label Studio's source storage gets on a real cloud, and the warning when
they are the loop's own write keys. The client records the call instead of reaching a cloud
(the local stand-ins and the real Label Studio are in
tests/integration/test_label_studio_storage_credentials.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from annotation_loop.data import sync
from annotation_loop.data.storage import DataSource
from annotation_loop.data.sync import connect_source_storage

LOOP_AWS = {"AWS_ACCESS_KEY_ID": "loop-id", "AWS_SECRET_ACCESS_KEY": "loop-secret"}
LABEL_STUDIO_AWS = {
    "LOOP_LABEL_STUDIO_AWS_ACCESS_KEY_ID": "ls-id",
    "LOOP_LABEL_STUDIO_AWS_SECRET_ACCESS_KEY": "ls-secret",
}
SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "p",
    "private_key": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
    "client_email": "",  # filled per account
    "token_uri": "https://oauth2.googleapis.com/token",
}


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
def clean(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [
        *LOOP_AWS,
        *LABEL_STUDIO_AWS,
        "GOOGLE_APPLICATION_CREDENTIALS",
        "LOOP_LABEL_STUDIO_GOOGLE_APPLICATION_CREDENTIALS",
        "AZURE_STORAGE_CONNECTION_STRING",
        "AZURE_STORAGE_ACCOUNT_NAME",
        "AZURE_STORAGE_ACCOUNT_KEY",
    ]:
        monkeypatch.delenv(name, raising=False)
    # A real bucket's CORS check would call the cloud.
    monkeypatch.setattr(sync, "warn_if_cors_missing", lambda source: None)
    sync._warn_write_keys.cache_clear()


def write_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "can also write and delete" in r.getMessage()]


def key_file(tmp_path: Path, email: str) -> Path:
    path = tmp_path / f"{email}.json"
    path.write_text(json.dumps({**SERVICE_ACCOUNT, "client_email": email}))
    return path


REAL_S3 = DataSource(root_uri="s3://bucket", dataset="mnist")


def test_the_loops_s3_keys_on_a_real_bucket_are_warned_about_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name, value in LOOP_AWS.items():
        monkeypatch.setenv(name, value)
    client = RecordingClient()
    with caplog.at_level(logging.WARNING):
        connect_source_storage(client, 1, REAL_S3)  # type: ignore[arg-type]
        connect_source_storage(client, 1, REAL_S3)  # type: ignore[arg-type]
    assert [kwargs["access_key"] for _, kwargs in client.calls] == ["loop-id", "loop-id"]
    (warning,) = write_warnings(caplog)
    assert "iam-policy-label-studio-readonly.json" in warning
    assert "LOOP_LABEL_STUDIO_AWS_ACCESS_KEY_ID" in warning
    assert "loop-secret" not in caplog.text


def test_read_only_s3_keys_go_to_label_studio_without_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name, value in {**LOOP_AWS, **LABEL_STUDIO_AWS}.items():
        monkeypatch.setenv(name, value)
    client = RecordingClient()
    with caplog.at_level(logging.WARNING):
        # An S3-compatible server of one's own (MinIO) is a real store too.
        connect_source_storage(  # type: ignore[arg-type]
            client, 1, REAL_S3.model_copy(update={"endpoint_url": "https://minio.internal"})
        )
    ((_, kwargs),) = client.calls
    assert (kwargs["access_key"], kwargs["secret_key"]) == ("ls-id", "ls-secret")
    assert not write_warnings(caplog)


def test_gcs_gets_label_studios_own_key_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file(tmp_path, "loop")))
    real_gcs = DataSource(root_uri="gs://bucket", dataset="mnist")
    client = RecordingClient()
    with caplog.at_level(logging.WARNING):
        connect_source_storage(client, 1, real_gcs)  # type: ignore[arg-type]
    assert json.loads(client.calls[-1][1]["credentials_json"])["client_email"] == "loop"
    assert "role-label-studio-readonly.yaml" in write_warnings(caplog)[0]

    caplog.clear()
    sync._warn_write_keys.cache_clear()
    monkeypatch.setenv(
        "LOOP_LABEL_STUDIO_GOOGLE_APPLICATION_CREDENTIALS", str(key_file(tmp_path, "ls"))
    )
    with caplog.at_level(logging.WARNING):
        connect_source_storage(client, 1, real_gcs)  # type: ignore[arg-type]
    assert json.loads(client.calls[-1][1]["credentials_json"])["client_email"] == "ls"
    assert not write_warnings(caplog)


def test_azures_account_key_on_real_azure_is_warned_about(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=x"
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", real)
    client = RecordingClient()
    with caplog.at_level(logging.WARNING):
        connect_source_storage(  # type: ignore[arg-type]
            client, 1, DataSource(root_uri="az://container", dataset="mnist")
        )
    (warning,) = write_warnings(caplog)
    assert "cloud_config/azure/README.md" in warning and "a2V5" not in caplog.text
