"""The `gcp` cloud: Google Cloud Storage, or an emulator (the fake-gcs-server stand-in) when
`gcs_endpoint_url` is set."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, BaseModel, Field

from annotation_loop.clouds.base import (
    ARTIFACTS_FOLDER,
    ArtifactStoreSpec,
    CloudName,
    Page,
    ReadOnlyCredentials,
    SourceConnection,
    StandIn,
    is_stand_in,
)
from annotation_loop.data.uris import split_uri
from annotation_loop.errors import ConfigurationError

if TYPE_CHECKING:
    from annotation_loop.data.storage import DataSource
    from annotation_loop.labelstudio import LabelStudioClient

SERVICE_ACCOUNT_FIELDS = ("type", "project_id", "private_key", "client_email", "token_uri")
KEY_FILE_VARIABLE = "GOOGLE_APPLICATION_CREDENTIALS"
LABEL_STUDIO_READ_ONLY = ReadOnlyCredentials(
    ("label_studio_google_application_credentials",),
    "cloud_config/gcp/role-label-studio-readonly.yaml",
)
# Nothing answers there (the discard port): off GCE the Google auth stack would otherwise probe
# the cloud metadata server (169.254.169.254, metadata.google.internal) and wait on it.
NO_METADATA_SERVER = "127.0.0.1:9"
# Read when `google.auth` is imported, so they must be in a process's environment from its start.
GOOGLE_OFFLINE_ENV = {
    "NO_GCE_CHECK": "true",
    "GCE_METADATA_HOST": NO_METADATA_SERVER,  # metadata requests (e.g. gcsfs token="cloud")
    "GCE_METADATA_IP": NO_METADATA_SERVER,  # the is-on-GCE ping
}


class GcpSettings(BaseModel):
    """The `gcp` cloud's settings (LOOP_GCS_BUCKET, ...; the key file also under Google's name)."""

    gcs_bucket: str = "annotation-loop"
    gcs_endpoint_url: str | None = None
    gcp_project: str | None = None  # for cloud_config/gcp/remote.sh
    google_application_credentials: Path | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "LOOP_GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS"
        ),
    )  # a service-account JSON key file
    local_gcs_port: int = 4443  # fake-gcs-server
    local_gcs: bool = False
    # Label Studio's own read-only key file (cloud_config/gcp/role-label-studio-readonly.yaml)
    # for the storage it presigns annotators' URLs with; without it it gets the loop's.
    label_studio_google_application_credentials: Path | None = None

    @property
    def local_gcs_endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.local_gcs_port}"


def read_service_account_json(path: Path, variable: str = KEY_FILE_VARIABLE) -> str:
    """The content of a GCP service-account key file (named by `variable`), validated."""
    fix = "create one with `gcloud iam service-accounts keys create key.json --iam-account=...`"
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigurationError(
            f"{variable}={path} cannot be read ({exc.strerror}): {fix}"
        ) from exc
    try:
        key = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"{variable}={path} is not valid JSON (line {exc.lineno}): {fix}"
        ) from exc
    if not isinstance(key, dict) or key.get("type") != "service_account":
        raise ConfigurationError(
            f'{variable}={path} is not a service-account key ("type" must '
            f'be "service_account"): {fix}'
        )
    missing = [name for name in SERVICE_ACCOUNT_FIELDS if not key.get(name)]
    if missing:
        raise ConfigurationError(f"{variable}={path} lacks {', '.join(missing)}: {fix}")
    return text


@dataclass(frozen=True)
class GcsSource:
    """Label Studio's GCS source storage for a dataset."""

    bucket: str
    prefix: str
    credentials_json: str | None = field(repr=False)  # None: an emulator, which has no auth
    presign: bool  # an emulator has no signing key: Label Studio then serves the bytes itself

    def connect(self, client: LabelStudioClient, project_id: int) -> int:
        return client.connect_gcs_source(
            project_id,
            bucket=self.bucket,
            prefix=self.prefix,
            credentials_json=self.credentials_json,
            presign=self.presign,
        )


class Gcp:
    name: CloudName = "gcp"
    scheme = "gs"
    stand_in: StandIn | None = StandIn(service="gcs", setting="local_gcs")
    bucket_setting = "LOOP_GCS_BUCKET"
    credentials_hint = f"{KEY_FILE_VARIABLE} (a service-account JSON key file)"
    label_studio_read_only: ReadOnlyCredentials | None = LABEL_STUDIO_READ_ONLY
    secret_name = "annotation-loop-gcp"

    def bucket_uri(self, settings: GcpSettings) -> str:
        return f"gs://{settings.gcs_bucket}"

    def endpoint_url(self, settings: GcpSettings) -> str | None:
        return settings.gcs_endpoint_url

    def stand_in_settings(self, settings: GcpSettings) -> dict[str, Any]:
        return {"gcs_endpoint_url": settings.local_gcs_endpoint_url}

    def artifact_store(self, settings: GcpSettings) -> ArtifactStoreSpec:
        key_file = settings.google_application_credentials
        return ArtifactStoreSpec(
            flavor="gcp",
            path=f"{self.bucket_uri(settings)}/{ARTIFACTS_FOLDER}",
            secret_name=self.secret_name,
            secret_values={"token": read_service_account_json(key_file)} if key_file else {},
        )

    def client_environment(self, settings: GcpSettings) -> dict[str, str]:
        env = {
            # The Google auth stack must never probe the metadata server or Google hosts.
            "NO_GCE_CHECK": "true",
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        }
        if settings.gcs_endpoint_url:
            env["STORAGE_EMULATOR_HOST"] = settings.gcs_endpoint_url
            env.update(GOOGLE_OFFLINE_ENV)
        if settings.google_application_credentials:
            env[KEY_FILE_VARIABLE] = str(settings.google_application_credentials)
        return env

    def storage_options(self, source: DataSource) -> dict[str, Any]:
        # An emulator has no auth; real GCS uses GOOGLE_APPLICATION_CREDENTIALS.
        return {"endpoint_url": source.endpoint_url, "token": "anon"} if source.endpoint_url else {}

    async def list_page(
        self, fs: Any, bucket: str, prefix: str, token: str | None, limit: int
    ) -> Page:
        # gcsfs's own listing collects every page before it returns: page through the JSON API.
        page = await fs._call(
            "GET",
            "b/{}/o",
            bucket,
            prefix=prefix,
            maxResults=limit,
            pageToken=token,
            json_out=True,
        )
        entries = [entry | {"name": f"{bucket}/{entry['name']}"} for entry in page.get("items", [])]
        return entries, page.get("nextPageToken")

    def label_studio_source(self, source: DataSource, settings: GcpSettings) -> SourceConnection:
        own = settings.label_studio_google_application_credentials
        key_file = own or settings.google_application_credentials
        if not (key_file or source.endpoint_url):
            return SourceConnection(None, f"{KEY_FILE_VARIABLE} is not set")
        variable = LABEL_STUDIO_READ_ONLY.variables[0] if own else KEY_FILE_VARIABLE
        _, bucket, _ = split_uri(source.root_uri)
        return SourceConnection(
            GcsSource(
                bucket=bucket,
                prefix=source.dataset,
                credentials_json=(
                    read_service_account_json(key_file, variable) if key_file else None
                ),
                presign=source.endpoint_url is None,
            ),
            write_keys_warning=(
                LABEL_STUDIO_READ_ONLY.write_keys_warning()
                if key_file and not (own or is_stand_in(source.endpoint_url))
                else None
            ),
            check_cors=source.endpoint_url is None,
        )

    def missing_cors_fix(self, source: DataSource, settings: GcpSettings) -> str | None:
        from google.cloud import storage

        # The emulator's address and the application's default credentials are read from the
        # environment (`client_environment`), as google.auth reads them.
        key_file = settings.google_application_credentials
        client = (
            storage.Client.from_service_account_json(str(key_file))
            if key_file
            else storage.Client()
        )
        _, bucket, _ = split_uri(source.root_uri)
        if list(client.get_bucket(bucket).cors or []):
            return None
        return f"gcloud storage buckets update gs://{bucket} --cors-file=cloud_config/gcp/cors.json"


GCP = Gcp()
