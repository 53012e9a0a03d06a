"""Per-test settings for one cloud, all pointing at the session's stand-ins."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from pydantic import SecretStr
from support import CONFIG

from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.settings import DEMO_S3_ACCESS_KEY, DEMO_S3_SECRET_KEY, Settings
from annotation_loop.task_types import get_task_type


@pytest.fixture
def client(services: Settings) -> LabelStudioClient:
    return LabelStudioClient(
        services.label_studio_url, services.label_studio_api_key.get_secret_value()
    )


@pytest.fixture
def project(client: LabelStudioClient, unique_name: str) -> Iterator[int]:
    project_id = client.get_or_create_project(unique_name, CONFIG)
    yield project_id
    client.delete_project(project_id)


def settings_for(services: Settings, unique_name: str, cloud: str, task: str) -> Settings:
    """Tests share the servers: each gets its own project, model, bucket and data prefix."""
    update: dict = {
        "task": task,
        "labels": list(get_task_type(task).defaults.labels),
        "project_name": unique_name,
        "model_name": unique_name.replace("-", "_"),
        "dataset": unique_name,
    }
    if cloud == "aws":
        update.update(
            s3_bucket=unique_name,
            s3_endpoint_url=services.local_s3_endpoint_url,
            aws_access_key_id=SecretStr(DEMO_S3_ACCESS_KEY),
            aws_secret_access_key=SecretStr(DEMO_S3_SECRET_KEY),
        )
    elif cloud == "gcp":
        update.update(gcs_bucket=unique_name, gcs_endpoint_url=services.local_gcs_endpoint_url)
    elif cloud == "azure":
        update.update(
            azure_container=unique_name,
            azure_storage_connection_string=SecretStr(services.local_azure_connection_string),
        )
    return services.model_copy(update=update)


@pytest.fixture
def cloud_settings(
    services: Settings, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> Callable[..., Settings]:
    """`cloud_settings("gcp", task="ner")`: the test's Settings (of the image task type unless
    told otherwise, other settings as given), with the clients' environment set.

    Every task is pre-annotated unless a test asks for the anchoring check's control tasks
    (`anchoring_share=...`): the other tests count pre-annotations."""

    def make(cloud: str, task: str = "image", **overrides: object) -> Settings:
        settings = settings_for(services, unique_name, cloud, task).model_copy(
            update={"anchoring_share": 0.0, **overrides}
        )
        for name, value in settings.client_environment().items():
            monkeypatch.setenv(name, value)
        return settings

    return make
