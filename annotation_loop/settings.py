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

from pydantic import Field, SecretStr, ValidationError, model_validator
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from annotation_loop.clouds import CLOUD_NAMES, get_cloud
from annotation_loop.clouds.aws import DEMO_S3_ACCESS_KEY, DEMO_S3_SECRET_KEY, AwsSettings
from annotation_loop.clouds.azure import AZURITE_ACCOUNT_KEY, AZURITE_ACCOUNT_NAME, AzureSettings
from annotation_loop.clouds.gcp import GOOGLE_OFFLINE_ENV, NO_METADATA_SERVER, GcpSettings
from annotation_loop.data.storage import (
    DEFAULT_MAX_IMAGE_PIXELS,
    DEFAULT_MAX_ITEM_BYTES,
    DataSource,
)
from annotation_loop.errors import ConfigurationError
from annotation_loop.quality.sampling import LabelQuality

_QUALITY_DEFAULTS = LabelQuality()

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# A legacy (DRF) token is 40 characters; this one only ever guards the local demo server.
DEMO_LABEL_STUDIO_TOKEN = "a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9"
DEMO_LABEL_STUDIO_PASSWORD = "annotation-loop"

# What the rest of the code and the tests import from here; the clouds' constants are
# defined in their own modules.
__all__ = [
    "AZURITE_ACCOUNT_KEY",
    "AZURITE_ACCOUNT_NAME",
    "CLOUDS",
    "DEMO_LABEL_STUDIO_PASSWORD",
    "DEMO_LABEL_STUDIO_TOKEN",
    "DEMO_S3_ACCESS_KEY",
    "DEMO_S3_SECRET_KEY",
    "GOOGLE_OFFLINE_ENV",
    "NO_METADATA_SERVER",
    "PROJECT_ROOT",
    "Settings",
]

CLOUDS = CLOUD_NAMES


def _message(error: ErrorDetails) -> str:
    """A validation error's message without pydantic's prefix for a validator's own."""
    return str(error["msg"]).removeprefix("Value error, ")


class Settings(AwsSettings, GcpSettings, AzureSettings, BaseSettings):
    """Everything that differs between a laptop demo and a real deployment; each cloud's
    own settings are declared in its module (annotation_loop/clouds/)."""

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
    # The local ZenML server `run.py up` starts, for its dashboard (ZenML's own takes 8237).
    zenml_server_port: int = 8238
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

    # Label quality (see annotation_loop/quality/sampling.py): the share of tasks labelled by
    # several annotators each, and the share of them shown without a pre-annotation.
    overlap_share: float = _QUALITY_DEFAULTS.overlap_share
    overlap_annotators: int = _QUALITY_DEFAULTS.overlap_annotators
    anchoring_share: float = _QUALITY_DEFAULTS.anchoring_share

    # ZenML components registered outside this project (see cloud_config/), used by the stacks
    # `run.py` registers: a remote orchestrator, and a GPU step operator for `train_model`.
    orchestrator: str = "default"
    step_operator: str | None = None

    # Runs at once: a second `--train` of a model (or `--inference` on a project) waits this
    # long for the first to finish, then stops; `serve` stops a retraining run after this long.
    lease_wait: float = Field(default=600.0, ge=0)  # seconds
    retrain_timeout: float = Field(default=7200.0, gt=0)  # seconds

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
        for cloud in map(get_cloud, CLOUD_NAMES):
            if cloud.stand_in and getattr(self, cloud.stand_in.setting):
                for name, value in cloud.stand_in_settings(self).items():
                    setattr(self, name, value)
        return self

    @classmethod
    def from_environment(cls) -> Settings:
        """The settings of this process (LOOP_* variables, then .env); a bad value is one
        line naming its variable, not pydantic's report."""
        try:
            return cls()
        except ValidationError as exc:
            error = exc.errors()[0]
            place = str(error["loc"][0]) if error["loc"] else ""
            # pydantic places an error at the field's name, or at the variable itself for a
            # field with aliases; a check across settings has no place, and its message
            # names the variables.
            variable = f"LOOP_{place.upper()}" if place in cls.model_fields else place
            where = f"{variable}={error['input']!r}: " if variable else ""
            raise ConfigurationError(
                f"{where}{_message(error)}: fix it in the environment or .env"
            ) from None

    @model_validator(mode="after")
    def _check_label_quality(self) -> Settings:
        self.label_quality  # noqa: B018  (refuses contradictory shares when read, not mid-run)
        return self

    @property
    def label_quality(self) -> LabelQuality:
        try:
            return LabelQuality(
                overlap_share=self.overlap_share,
                overlap_annotators=self.overlap_annotators,
                anchoring_share=self.anchoring_share,
            )
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(f"LOOP_{str(part).upper()}" for part in error["loc"])
            raise ValueError(f"{where or 'LOOP_ANCHORING_SHARE'}: {_message(error)}") from None

    @property
    def label_studio_port(self) -> int:
        return urlsplit(self.label_studio_url).port or 80

    @property
    def local_data_root(self) -> Path:
        """Folder Label Studio serves local files from; the `local` cloud's bucket."""
        return self.state_dir / "data"

    @property
    def zenml_config_path(self) -> Path:
        return self.state_dir / "zenml"

    @property
    def logs_dir(self) -> Path:
        return self.state_dir / "logs"

    def client_environment(self) -> dict[str, str]:
        """The variables every cloud's client libraries (boto3, gcsfs, adlfs, google.auth)
        read from their process: what a process sets at its start."""
        env: dict[str, str] = {}
        for cloud in map(get_cloud, CLOUD_NAMES):
            env.update(cloud.client_environment(self))
        return env

    def process_environment(self, cloud: str) -> dict[str, str]:
        """The environment of a process that works on `cloud` for this one: a subprocess, or
        a pipeline step on a remote orchestrator. These settings as LOOP_* variables (read
        back with `Settings()`), and the variables the cloud's client libraries read."""
        return {**self.environment(), **get_cloud(cloud).client_environment(self)}

    def bucket_uri(self, cloud: str) -> str:
        """The bucket (or local folder) holding a cloud's data and ZenML artifacts."""
        return get_cloud(cloud).bucket_uri(self)

    def data_source(self, cloud: str) -> DataSource:
        return DataSource(
            root_uri=self.bucket_uri(cloud),
            dataset=self.dataset,
            endpoint_url=get_cloud(cloud).endpoint_url(self),
            region=self.aws_region,
            text_field=self.text_field,
            id_field=self.id_field,
            max_item_bytes=self.max_item_bytes,
            max_image_pixels=self.max_image_pixels,
        )

    def artifact_store_uri(self, cloud: str) -> str:
        return get_cloud(cloud).artifact_store(self).path
