"""Settings of the loop, read from `LOOP_*` environment variables (or a `.env` file).

Defaults point at the local stand-ins that `python run.py up` starts, so the demo needs
no configuration; real clouds are configured by overriding a handful of variables
(see README.md, "Your own data").
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from annotation_loop.storage import DataSource

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# A legacy (DRF) token is 40 characters; this one only ever guards the local demo server.
DEMO_LABEL_STUDIO_TOKEN = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9"
DEMO_S3_ACCESS_KEY = "loop-demo-access-key"
DEMO_S3_SECRET_KEY = "loop-demo-secret-key"

CLOUDS = ("local", "aws", "gcp", "azure")


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
    label_studio_password: SecretStr = SecretStr("annotation-loop")
    label_studio_venv: Path = PROJECT_ROOT / ".venv-ls"

    # What is being labelled
    project_name: str = "MNIST digits"
    model_name: str = "digits_classifier"
    labels: list[str] = Field(default_factory=lambda: [str(d) for d in range(10)])
    dataset: str = "mnist"  # the prefix under the data root that holds batch_1/, batch_2/, ...

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

    @model_validator(mode="after")
    def _use_local_s3(self) -> Settings:
        if self.local_s3:
            self.s3_endpoint_url = self.local_s3_endpoint_url
            self.aws_access_key_id = SecretStr(DEMO_S3_ACCESS_KEY)
            self.aws_secret_access_key = SecretStr(DEMO_S3_SECRET_KEY)
        return self

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

    def data_root_uri(self, cloud: str) -> str:
        """Root under which `dataset/batch_N/` lives, as an fsspec URI."""
        if cloud == "local":
            return str(self.local_data_root)
        if cloud == "aws":
            return f"s3://{self.s3_bucket}"
        raise ValueError(f"no data root for cloud {cloud!r}")

    def data_source(self, cloud: str) -> DataSource:
        return DataSource(
            root_uri=self.data_root_uri(cloud),
            dataset=self.dataset,
            endpoint_url=self.s3_endpoint_url if cloud == "aws" else None,
            region=self.aws_region,
        )

    def artifact_store_uri(self, cloud: str) -> str:
        if cloud == "local":
            return str(self.state_dir / "artifacts")
        if cloud == "aws":
            return f"s3://{self.s3_bucket}/zenml-artifacts"
        raise ValueError(f"no artifact store for cloud {cloud!r}")
