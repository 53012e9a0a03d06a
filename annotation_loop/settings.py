"""Settings of the loop, read from `LOOP_*` environment variables (or a `.env` file).

Defaults point at the local stand-ins that `python run.py up` starts, so the demo needs
no configuration; real clouds are configured by overriding a handful of variables
(see README.md, "Your own data").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from annotation_loop.data.storage import (
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_MAX_ITEM_BYTES,
    DataSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# A legacy (DRF) token is 40 characters; this one only ever guards the local demo server.
DEMO_LABEL_STUDIO_TOKEN = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9"
DEMO_LABEL_STUDIO_PASSWORD = "annotation-loop"
DEMO_S3_ACCESS_KEY = "loop-demo-access-key"
DEMO_S3_SECRET_KEY = "loop-demo-secret-key"
# Azurite's well-known development account (public, documented by Microsoft).
AZURITE_ACCOUNT_NAME = "devstoreaccount1"
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

CLOUDS = ("local", "aws", "gcp", "azure")

# Nothing answers there (the discard port): off GCE the Google auth stack would otherwise probe
# the cloud metadata server (169.254.169.254, metadata.google.internal) and wait on it.
NO_METADATA_SERVER = "127.0.0.1:9"
# Read when `google.auth` is imported, so they must be in a process's environment from its start.
GOOGLE_OFFLINE_ENV = {
    "NO_GCE_CHECK": "true",
    "GCE_METADATA_HOST": NO_METADATA_SERVER,  # metadata requests (e.g. gcsfs token="cloud")
    "GCE_METADATA_IP": NO_METADATA_SERVER,  # the is-on-GCE ping
}


class Settings(BaseSettings):
    """Everything that differs between a laptop demo and a real deployment."""

    model_config = SettingsConfigDict(
        env_prefix="LOOP_", env_file=".env", extra="ignore", populate_by_name=True
    )

    # Where the project keeps its own state: services' data, logs, ZenML config, demo data.
    state_dir: Path = PROJECT_ROOT / ".loop"

    # Label Studio
    label_studio_url: str = "http://127.0.0.1:8093"
    label_studio_api_key: SecretStr = SecretStr(DEMO_LABEL_STUDIO_TOKEN)
    label_studio_username: str = "admin@example.com"
    label_studio_password: SecretStr = SecretStr(DEMO_LABEL_STUDIO_PASSWORD)
    label_studio_venv: Path = PROJECT_ROOT / ".venv-ls"
    # The ML backend's basic auth (`run.py serve`); unset, it makes its own, kept in state_dir.
    backend_user: str | None = None
    backend_password: SecretStr | None = None

    # What is being labelled: the task type (image | text | ner) sets the defaults of the rest.
    task: str = "image"
    project_name: str
    model_name: str
    labels: list[str]
    dataset: str  # the prefix under the data root that holds batch_1/, batch_2/, ...
    text_field: str = "text"  # JSON/JSONL/CSV rows of text tasks: the text's column
    id_field: str = "id"  # ... and the row id's column
    # The most one read of an item may bring in (an image or text file), and an image's pixels.
    max_item_bytes: int = Field(default=DEFAULT_MAX_ITEM_BYTES, gt=0)
    max_image_pixels: int = Field(default=DEFAULT_MAX_IMAGE_PIXELS, gt=0)

    # S3 (or an S3-compatible server when `s3_endpoint_url` is set)
    s3_bucket: str = "annotation-loop"
    s3_endpoint_url: str | None = None
    aws_access_key_id: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LOOP_AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID")
    )
    aws_secret_access_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("LOOP_AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
    )
    aws_region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("LOOP_AWS_REGION", "AWS_DEFAULT_REGION")
    )

    # The local S3 stand-in (SeaweedFS) that `run.py up` starts; `local_s3=true` points the
    # `aws` cloud at it (endpoint and demo keys), as `make demo CLOUD=aws` does.
    local_s3_port: int = 8333
    local_s3: bool = False

    # ZenML components registered outside this project (see cloud_config/), used by the stacks
    # `run.py` registers: a remote orchestrator, and a GPU step operator for `train_model`.
    orchestrator: str = "default"
    step_operator: str | None = None

    # Runs at once: a second `--train` of a model (or `--inference` on a project) waits this
    # long for the first to finish, then stops; `serve` stops a retraining run after this long.
    lease_wait: float = Field(default=600.0, ge=0)  # seconds
    retrain_timeout: float = Field(default=7200.0, gt=0)  # seconds

    # Google Cloud Storage, or an emulator when `gcs_endpoint_url` is set
    gcs_bucket: str = "annotation-loop"
    gcs_endpoint_url: str | None = None
    gcp_project: str | None = None
    google_application_credentials: Path | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "LOOP_GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_APPLICATION_CREDENTIALS"
        ),
    )  # a service-account JSON key file
    local_gcs_port: int = 4443  # fake-gcs-server
    local_gcs: bool = False

    # Azure Blob Storage, or Azurite when `local_azure` is set
    azure_container: str = "annotation-loop"
    azure_storage_connection_string: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "LOOP_AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_CONNECTION_STRING"
        ),
    )
    azure_storage_account_name: str | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "LOOP_AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_NAME"
        ),
    )
    azure_storage_account_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices(
            "LOOP_AZURE_STORAGE_ACCOUNT_KEY", "AZURE_STORAGE_ACCOUNT_KEY"
        ),
    )
    azure_storage_sas_token: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("LOOP_AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_SAS_TOKEN"),
    )
    local_azure_port: int = 10000  # Azurite's blob service
    local_azure: bool = False

    # Label Studio's own read-only credentials for the source storage it presigns annotators'
    # URLs with (cloud_config/aws/iam-policy-label-studio-readonly.json,
    # cloud_config/gcp/role-label-studio-readonly.yaml); without them it gets the loop's, which
    # can write and delete. Label Studio 1.23 takes only an account key on Azure.
    label_studio_aws_access_key_id: SecretStr | None = None
    label_studio_aws_secret_access_key: SecretStr | None = None
    label_studio_google_application_credentials: Path | None = None  # a key file

    def environment(self) -> dict[str, str]:
        """These settings as the LOOP_* variables that recreate them in another process (a
        training run the ML backend starts)."""
        variables = {}
        for name, value in self:
            if value is None:
                continue
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            elif isinstance(value, list):
                value = json.dumps(value)
            elif isinstance(value, bool):
                value = str(value).lower()
            variables[f"LOOP_{name.upper()}"] = str(value)
        return variables

    @model_validator(mode="before")
    @classmethod
    def _task_defaults(cls, values: Any) -> Any:
        if not isinstance(values, dict):
            return values
        from annotation_loop.task_types import get_task_type

        defaults = get_task_type(values.get("task", "image")).defaults
        values.setdefault("project_name", defaults.project_name)
        values.setdefault("model_name", defaults.model_name)
        values.setdefault("dataset", defaults.dataset)
        values.setdefault("labels", list(defaults.labels))
        return values

    @model_validator(mode="after")
    def _use_local_stand_ins(self) -> Settings:
        if self.local_s3:
            self.s3_endpoint_url = self.local_s3_endpoint_url
            self.aws_access_key_id = SecretStr(DEMO_S3_ACCESS_KEY)
            self.aws_secret_access_key = SecretStr(DEMO_S3_SECRET_KEY)
        if self.local_gcs:
            self.gcs_endpoint_url = self.local_gcs_endpoint_url
        if self.local_azure:
            self.azure_storage_connection_string = SecretStr(self.local_azure_connection_string)
        return self

    @property
    def local_gcs_endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.local_gcs_port}"

    @property
    def local_azure_blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.local_azure_port}/{AZURITE_ACCOUNT_NAME}"

    @property
    def local_azure_connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT_NAME};"
            f"AccountKey={AZURITE_ACCOUNT_KEY};BlobEndpoint={self.local_azure_blob_endpoint};"
        )

    @property
    def label_studio_port(self) -> int:
        return urlsplit(self.label_studio_url).port or 80

    @property
    def local_data_root(self) -> Path:
        """Folder Label Studio serves local files from; the `local` cloud's bucket."""
        return self.state_dir / "data"

    @property
    def local_s3_endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.local_s3_port}"

    @property
    def zenml_config_path(self) -> Path:
        return self.state_dir / "zenml"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    def client_environment(self) -> dict[str, str]:
        """Variables the storage clients (boto3, gcsfs, adlfs) read from the process."""
        env = {
            # The Google auth stack must never probe the metadata server or Google hosts.
            "NO_GCE_CHECK": "true",
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
        }
        if self.aws_access_key_id and self.aws_secret_access_key:
            env["AWS_ACCESS_KEY_ID"] = self.aws_access_key_id.get_secret_value()
            env["AWS_SECRET_ACCESS_KEY"] = self.aws_secret_access_key.get_secret_value()
        if self.gcs_endpoint_url:
            env["STORAGE_EMULATOR_HOST"] = self.gcs_endpoint_url
            env.update(GOOGLE_OFFLINE_ENV)
        if self.google_application_credentials:
            env["GOOGLE_APPLICATION_CREDENTIALS"] = str(self.google_application_credentials)
        if self.azure_storage_connection_string:
            env["AZURE_STORAGE_CONNECTION_STRING"] = (
                self.azure_storage_connection_string.get_secret_value()
            )
        if self.azure_storage_account_name:
            env["AZURE_STORAGE_ACCOUNT_NAME"] = self.azure_storage_account_name
        if self.azure_storage_account_key:
            env["AZURE_STORAGE_ACCOUNT_KEY"] = self.azure_storage_account_key.get_secret_value()
        if self.azure_storage_sas_token:
            env["AZURE_STORAGE_SAS_TOKEN"] = self.azure_storage_sas_token.get_secret_value()
        # For the source storage the sync connects, which reads them from the environment.
        if self.label_studio_aws_access_key_id and self.label_studio_aws_secret_access_key:
            env["LOOP_LABEL_STUDIO_AWS_ACCESS_KEY_ID"] = (
                self.label_studio_aws_access_key_id.get_secret_value()
            )
            env["LOOP_LABEL_STUDIO_AWS_SECRET_ACCESS_KEY"] = (
                self.label_studio_aws_secret_access_key.get_secret_value()
            )
        if self.label_studio_google_application_credentials:
            env["LOOP_LABEL_STUDIO_GOOGLE_APPLICATION_CREDENTIALS"] = str(
                self.label_studio_google_application_credentials
            )
        return env

    def bucket_uri(self, cloud: str) -> str:
        """The bucket (or local folder) holding a cloud's data and ZenML artifacts."""
        roots = {
            "local": str(self.local_data_root),
            "aws": f"s3://{self.s3_bucket}",
            "gcp": f"gs://{self.gcs_bucket}",
            "azure": f"az://{self.azure_container}",
        }
        return roots[cloud]

    def data_source(self, cloud: str) -> DataSource:
        endpoints = {"aws": self.s3_endpoint_url, "gcp": self.gcs_endpoint_url}
        return DataSource(
            root_uri=self.bucket_uri(cloud),
            dataset=self.dataset,
            endpoint_url=endpoints.get(cloud),
            region=self.aws_region,
            text_field=self.text_field,
            id_field=self.id_field,
            max_item_bytes=self.max_item_bytes,
            max_image_pixels=self.max_image_pixels,
        )

    def artifact_store_uri(self, cloud: str) -> str:
        if cloud == "local":
            return str(self.state_dir / "artifacts")
        return f"{self.bucket_uri(cloud)}/zenml-artifacts"
