"""Label Studio's source storage on the real Label Studio and the local stand-ins: it gets
its own read-only keys when they are set, and the stand-ins' keys raise no warning (they
guard nothing). The real-cloud warning is in tests/unit/test_label_studio_storage_credentials.py."""

from __future__ import annotations

import logging
from collections.abc import Callable

import boto3
import httpx
import pytest
from azure.storage.blob import BlobServiceClient
from support import png

from annotation_loop.data import sync
from annotation_loop.data.sync import connect_source_storage
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.settings import DEMO_S3_ACCESS_KEY, DEMO_S3_SECRET_KEY, Settings

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def warnings_once_per_test() -> None:
    sync._warn_write_keys.cache_clear()


def write_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "can also write and delete" in r.getMessage()]


def storages(settings: Settings, kind: str, project_id: int) -> list[dict]:
    token = settings.label_studio_api_key.get_secret_value()
    response = httpx.get(
        f"{settings.label_studio_url}/api/storages/{kind}/",
        params={"project": project_id},
        headers={"Authorization": f"Token {token}"},
        trust_env=False,
    )
    return list(response.raise_for_status().json())


def seed_s3(settings: Settings) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=settings.local_s3_endpoint_url,
        aws_access_key_id=DEMO_S3_ACCESS_KEY,
        aws_secret_access_key=DEMO_S3_SECRET_KEY,
        region_name="us-east-1",
    )
    s3.create_bucket(Bucket=settings.s3_bucket)
    s3.put_object(
        Bucket=settings.s3_bucket, Key=f"{settings.dataset}/batch_1/a.png", Body=png((1, 2, 3))
    )


def test_label_studio_connects_with_its_own_keys_not_the_loops(
    cloud_settings: Callable[..., Settings],
    client: LabelStudioClient,
    project: int,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The loop's keys are wrong here: Label Studio checks the bucket with the keys it is
    given before it creates the storage, so the storage exists only if it got its own."""
    settings = cloud_settings("aws")
    seed_s3(settings)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
    monkeypatch.setenv("LOOP_LABEL_STUDIO_AWS_ACCESS_KEY_ID", DEMO_S3_ACCESS_KEY)
    monkeypatch.setenv("LOOP_LABEL_STUDIO_AWS_SECRET_ACCESS_KEY", DEMO_S3_SECRET_KEY)

    with caplog.at_level(logging.WARNING):
        connect_source_storage(client, project, settings.data_source("aws"))

    [storage] = storages(settings, "s3", project)
    assert storage["bucket"] == settings.s3_bucket
    assert not write_warnings(caplog)


def test_the_stand_ins_keys_raise_no_warning(
    cloud_settings: Callable[..., Settings],
    client: LabelStudioClient,
    project: int,
    services: Settings,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = cloud_settings("aws")
    seed_s3(settings)
    with caplog.at_level(logging.WARNING):
        connect_source_storage(client, project, settings.data_source("aws"))
    assert len(storages(settings, "s3", project)) == 1

    azure = cloud_settings("azure")
    blobs = BlobServiceClient.from_connection_string(services.local_azure_connection_string)
    blobs.create_container(azure.azure_container).upload_blob(
        f"{azure.dataset}/batch_1/a.png", png((1, 2, 3))
    )
    with caplog.at_level(logging.WARNING):
        connect_source_storage(client, project, azure.data_source("azure"))
    assert len(storages(settings, "azure", project)) == 1
    assert not write_warnings(caplog)
