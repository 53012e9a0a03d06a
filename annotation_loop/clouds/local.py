"""The `local` cloud: a folder on this machine, which Label Studio serves itself (local-files
storage), and ZenML's local artifact store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from annotation_loop.clouds.base import (
    ArtifactStoreSpec,
    CloudName,
    ReadOnlyCredentials,
    SourceConnection,
    StandIn,
)

if TYPE_CHECKING:
    from annotation_loop.data.storage import DataSource
    from annotation_loop.labelstudio import LabelStudioClient
    from annotation_loop.settings import Settings


@dataclass(frozen=True)
class LocalFolder:
    """Label Studio's local-files storage for a dataset folder under its document root."""

    path: Path

    def connect(self, client: LabelStudioClient, project_id: int) -> int:
        return client.connect_local_source(project_id, self.path)


class Local:
    name: CloudName = "local"
    scheme = "file"
    stand_in: StandIn | None = None  # the folder is its own
    bucket_setting = "LOOP_STATE_DIR"
    credentials_hint = "the folder's permissions"
    label_studio_read_only: ReadOnlyCredentials | None = None

    def bucket_uri(self, settings: Settings) -> str:
        return str(settings.local_data_root)

    def endpoint_url(self, settings: Settings) -> str | None:
        return None

    def stand_in_settings(self, settings: Settings) -> dict[str, Any]:
        return {}

    def artifact_store(self, settings: Settings) -> ArtifactStoreSpec:
        return ArtifactStoreSpec(flavor="local", path=str(settings.state_dir / "artifacts"))

    def client_environment(self, settings: Settings) -> dict[str, str]:
        return {}

    def storage_options(self, source: DataSource) -> dict[str, Any]:
        return {}

    def label_studio_source(self, source: DataSource, settings: Settings) -> SourceConnection:
        return SourceConnection(LocalFolder(Path(source.dataset_uri)))

    def missing_cors_fix(self, source: DataSource, settings: Settings) -> str | None:
        return None  # Label Studio serves the files from its own origin


LOCAL = Local()
