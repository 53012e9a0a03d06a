"""What the loop needs to know about a cloud, behind one small protocol.

Each cloud is one module (`local`, `aws`, `gcp`, `azure`) that holds all of its knowledge:
its settings, where its bucket is, its ZenML artifact store, the variables its client
libraries read, how its bucket is listed, how Label Studio connects to it, its CORS check,
and the local stand-in that plays it in the demo and the tests. Code names clouds by these
four names only; URI schemes appear only where a URI is parsed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from annotation_loop.data.uris import is_loopback_url

if TYPE_CHECKING:
    from annotation_loop.data.storage import DataSource
    from annotation_loop.labelstudio import LabelStudioClient
    from annotation_loop.settings import Settings

CloudName = Literal["local", "aws", "gcp", "azure"]

# Under a cloud's bucket, the folder of its ZenML artifact store.
ARTIFACTS_FOLDER = "zenml-artifacts"

# One page of a listing: its entries, and the token that asks for the next page (None: the
# last). A page that fails is asked for again with the same token, so nothing is listed twice.
Page = tuple[list[dict[str, Any]], str | None]


@dataclass(frozen=True)
class StandIn:
    """The local server that plays a cloud's storage in the demo and the tests."""

    service: str  # its name in annotation_loop.dev.services.SERVICES
    setting: str  # the Settings flag that points the cloud at it, e.g. `local_s3`

    @property
    def variable(self) -> str:
        """The environment variable of `setting`: `LOOP_LOCAL_S3`."""
        return f"LOOP_{self.setting.upper()}"


@dataclass(frozen=True)
class ArtifactStoreSpec:
    """A cloud's ZenML artifact store: flavor, path, options and its credentials' secret."""

    flavor: str
    path: str
    configuration: dict[str, Any] = field(default_factory=dict)  # the flavor's other options
    secret_name: str | None = None  # None: the store needs no credentials (a local folder)
    # Empty: the environment's own credentials (instance profile, workload identity, an
    # emulator), as on a remote orchestrator.
    secret_values: dict[str, str] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ReadOnlyCredentials:
    """Label Studio's own credentials on a cloud, narrower than the loop's."""

    settings: tuple[str, ...]  # the Settings fields that hold them
    policy: str  # what to apply in the cloud account to make them read-only

    @property
    def variables(self) -> tuple[str, ...]:
        return tuple(f"LOOP_{name.upper()}" for name in self.settings)

    def write_keys_warning(self) -> str:
        return (
            "Label Studio gets the loop's own credentials, which can also write and delete: "
            f"give it read-only ones made with {self.policy}, in {' and '.join(self.variables)}"
        )


class SourceStorage(Protocol):
    """A Label Studio source storage, ready to be connected to a project."""

    def connect(self, client: LabelStudioClient, project_id: int) -> int:
        """Connects it (or finds it connected); its id."""
        ...


@dataclass(frozen=True)
class SourceConnection:
    """How Label Studio gets at a dataset's items: the storage to connect (None: it cannot
    be, `problem` says why), and what the user should hear about it."""

    storage: SourceStorage | None
    problem: str = ""
    write_keys_warning: str | None = None  # set when Label Studio gets the loop's write keys
    # A bucket of the cloud itself (no emulator, no S3-compatible server), which annotators'
    # browsers read: without CORS rules they show no images.
    check_cors: bool = False


def is_stand_in(endpoint_url: str | None) -> bool:
    """Whether a storage endpoint is a local stand-in (loopback): its keys guard nothing."""
    return is_loopback_url(endpoint_url)


@runtime_checkable
class Cloud(Protocol):
    """One cloud (or the local folder): everything the loop does differently per cloud."""

    @property
    def name(self) -> CloudName: ...

    @property
    def scheme(self) -> str:
        """The URI scheme of its objects (`file` for the local folder's plain paths)."""
        ...

    @property
    def stand_in(self) -> StandIn | None: ...

    @property
    def bucket_setting(self) -> str:
        """The variable that names its bucket, for error messages."""
        ...

    @property
    def credentials_hint(self) -> str:
        """Where its credentials are set, for error messages."""
        ...

    @property
    def label_studio_read_only(self) -> ReadOnlyCredentials | None:
        """Label Studio's own read-only credentials, where the cloud has them."""
        ...

    def bucket_uri(self, settings: Settings) -> str:
        """The bucket (or local folder) holding its data and ZenML artifacts."""
        ...

    def endpoint_url(self, settings: Settings) -> str | None:
        """An emulator's or an S3-compatible server's URL; None: the cloud itself."""
        ...

    def stand_in_settings(self, settings: Settings) -> dict[str, Any]:
        """The settings that point it at its local stand-in."""
        ...

    def artifact_store(self, settings: Settings) -> ArtifactStoreSpec:
        """Its ZenML artifact store; credentials are checked before anything is written."""
        ...

    def client_environment(self, settings: Settings) -> dict[str, str]:
        """The variables its client libraries read from their process (at its start)."""
        ...

    def storage_options(self, source: DataSource) -> dict[str, Any]:
        """fsspec's options for its filesystem; credentials come from the environment."""
        ...

    def label_studio_source(self, source: DataSource, settings: Settings) -> SourceConnection:
        """The source storage that lets Label Studio show annotators `source`'s items, with
        Label Studio's own credentials from `settings`."""
        ...

    def missing_cors_fix(self, source: DataSource, settings: Settings) -> str | None:
        """The command that adds the CORS rules annotators' browsers need, or None if the
        bucket has some."""
        ...


@runtime_checkable
class BucketCloud(Cloud, Protocol):
    """A cloud whose data is in buckets, listed page by page."""

    async def list_page(
        self, fs: Any, bucket: str, prefix: str, token: str | None, limit: int
    ) -> Page:
        """Up to `limit` entries under `prefix`, from the page `token` names (None: the first),
        as fsspec's listing entries with the bucket in their names."""
        ...
