"""GCS and Azure source storages against the real Label Studio, fake-gcs-server and Azurite:
Label Studio must serve a task's image bytes from the bucket it is connected to."""

import base64

import httpx
import pytest
from azure.storage.blob import BlobServiceClient
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage
from support import png

from annotation_loop.errors import LabelStudioHTTPError
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.settings import AZURITE_ACCOUNT_KEY, AZURITE_ACCOUNT_NAME, Settings

pytestmark = pytest.mark.integration


def image_through_label_studio(
    services: Settings, client: LabelStudioClient, project_id: int, uri: str
) -> bytes:
    """Imports a task showing `uri` and fetches its image as the annotator's browser does."""
    [task_id] = client.import_tasks(project_id, [{"image": uri}])
    token = services.label_studio_api_key.get_secret_value()
    with httpx.Client(
        base_url=services.label_studio_url, headers={"Authorization": f"Token {token}"}
    ) as api:
        resolved = api.get(f"/api/tasks/{task_id}/").raise_for_status().json()["data"]["image"]
        expected = base64.urlsafe_b64encode(uri.encode()).decode()
        assert resolved == f"/tasks/{task_id}/resolve/?fileuri={expected}"
        return api.get(resolved).raise_for_status().content


def test_gcs_source_is_idempotent_and_label_studio_serves_its_objects(
    services: Settings,
    client: LabelStudioClient,
    project: int,
    unique_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", services.local_gcs_endpoint_url)
    gcs = storage.Client(project="test", credentials=AnonymousCredentials())
    image = png((200, 30, 90))
    gcs.create_bucket(unique_name).blob("raw/a.png").upload_from_string(
        image, content_type="image/png"
    )

    # No credentials: Label Studio talks to the emulator anonymously, and cannot presign.
    def connect(prefix: str) -> int:
        return client.connect_gcs_source(
            project, bucket=unique_name, prefix=prefix, credentials_json=None, presign=False
        )

    storage_id = connect("raw")
    assert connect("/raw/") == storage_id
    with pytest.raises(
        LabelStudioHTTPError, match=rf"could not connect gs://{unique_name}/empty: "
    ):
        connect("empty")

    uri = f"gs://{unique_name}/raw/a.png"
    assert image_through_label_studio(services, client, project, uri) == image


@pytest.fixture
def azurite_container(services: Settings, unique_name: str) -> str:
    blobs = BlobServiceClient.from_connection_string(services.local_azure_connection_string)
    blobs.create_container(unique_name)
    return unique_name


def test_azure_source_through_a_blob_endpoint_is_idempotent_and_serves_its_objects(
    services: Settings, client: LabelStudioClient, project: int, azurite_container: str
) -> None:
    blobs = BlobServiceClient.from_connection_string(services.local_azure_connection_string)
    image = png((200, 30, 90))
    blobs.get_blob_client(azurite_container, "raw/a.png").upload_blob(image)

    def connect(prefix: str) -> int:
        return client.connect_azure_source(
            project,
            container=azurite_container,
            prefix=prefix,
            account_name=AZURITE_ACCOUNT_NAME,
            account_key=AZURITE_ACCOUNT_KEY,
            presign=False,
            blob_endpoint=services.local_azure_blob_endpoint,
        )

    storage_id = connect("raw")
    assert connect("raw/") == storage_id

    uri = f"azure-blob://{azurite_container}/raw/a.png"
    assert image_through_label_studio(services, client, project, uri) == image


def test_azure_source_without_a_reachable_account_fails_with_one_clear_line(
    client: LabelStudioClient, project: int, azurite_container: str
) -> None:
    # Label Studio looks for the dev account at devstoreaccount1.blob.core.windows.net, which
    # does not resolve here: its Azure SDK retries for ~85 s before it answers.
    with pytest.raises(LabelStudioHTTPError) as raised:
        client.connect_azure_source(
            project,
            container=azurite_container,
            prefix="raw",
            account_name=AZURITE_ACCOUNT_NAME,
            account_key=AZURITE_ACCOUNT_KEY,
            presign=False,
        )
    message = str(raised.value)
    assert "\n" not in message
    assert f"could not connect azure-blob://{azurite_container}/raw: " in message
    assert (
        f"must reach Azure Blob Storage at https://{AZURITE_ACCOUNT_NAME}.blob.core.windows.net"
        in message
    )
