"""The `azure` cloud: Azure Blob Storage, or Azurite (the stand-in) when the connection
string names its endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, BaseModel, Field, SecretStr

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
    from azure.storage.blob import BlobServiceClient

    from annotation_loop.data.storage import DataSource
    from annotation_loop.labelstudio import LabelStudioClient

# Azurite's well-known development account (public, documented by Microsoft).
AZURITE_ACCOUNT_NAME = "devstoreaccount1"
AZURITE_ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
CREDENTIAL_KEYS = ("AccountKey", "SharedAccessSignature")
ACCOUNT_VARIABLES = "AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_NAME + _ACCOUNT_KEY"
# Label Studio 1.23 takes only an account key on Azure, which opens the whole account.
WRITE_KEYS_WARNING = (
    "Label Studio gets the loop's Azure account key, which can also write and delete; "
    "Label Studio 1.23 takes nothing narrower, so keep the storage account dedicated "
    "to the loop (cloud_config/azure/README.md)"
)


def _azure_variable(name: str) -> AliasChoices:
    return AliasChoices(f"LOOP_{name}", name)


class AzureSettings(BaseModel):
    """The `azure` cloud's settings (LOOP_AZURE_CONTAINER, ...; credentials also under Azure's
    names)."""

    azure_container: str = "annotation-loop"
    azure_storage_connection_string: SecretStr | None = Field(
        default=None, validation_alias=_azure_variable("AZURE_STORAGE_CONNECTION_STRING")
    )
    azure_storage_account_name: str | None = Field(
        default=None, validation_alias=_azure_variable("AZURE_STORAGE_ACCOUNT_NAME")
    )
    azure_storage_account_key: SecretStr | None = Field(
        default=None, validation_alias=_azure_variable("AZURE_STORAGE_ACCOUNT_KEY")
    )
    azure_storage_sas_token: SecretStr | None = Field(
        default=None, validation_alias=_azure_variable("AZURE_STORAGE_SAS_TOKEN")
    )
    local_azure_port: int = 10000  # Azurite's blob service
    local_azure: bool = False

    @property
    def local_azure_blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.local_azure_port}/{AZURITE_ACCOUNT_NAME}"

    @property
    def local_azure_connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT_NAME};"
            f"AccountKey={AZURITE_ACCOUNT_KEY};BlobEndpoint={self.local_azure_blob_endpoint};"
        )


def parse_azure_connection_string(connection_string: str) -> dict[str, str]:
    """`Key=Value;...` pairs of a connection string that can authenticate."""
    parts = dict(item.split("=", 1) for item in connection_string.strip().split(";") if "=" in item)
    if "AccountName" not in parts and "BlobEndpoint" not in parts:
        raise ConfigurationError(
            "AZURE_STORAGE_CONNECTION_STRING has no AccountName: copy it from the storage "
            "account's 'Access keys' page in the Azure portal"
        )
    if not any(parts.get(key) for key in CREDENTIAL_KEYS):
        raise ConfigurationError(
            "AZURE_STORAGE_CONNECTION_STRING has no AccountKey or SharedAccessSignature: use "
            "the full string from the storage account's 'Access keys' page"
        )
    return parts


@dataclass(frozen=True)
class AzureAccount:
    name: str
    key: str = field(repr=False)
    blob_endpoint: str | None = None  # set for emulators and sovereign clouds

    @property
    def emulated(self) -> bool:
        """An emulator's endpoint, which Label Studio cannot presign URLs for: it builds
        *.blob.core.windows.net URLs."""
        return bool(self.blob_endpoint) and ".blob.core.windows.net" not in str(self.blob_endpoint)


def azure_account(settings: AzureSettings) -> AzureAccount | None:
    """The account's name and key (from the connection string first); None without a key."""
    if settings.azure_storage_connection_string:
        parts = parse_azure_connection_string(
            settings.azure_storage_connection_string.get_secret_value()
        )
        if parts.get("AccountName") and parts.get("AccountKey"):
            return AzureAccount(
                parts["AccountName"], parts["AccountKey"], parts.get("BlobEndpoint")
            )
        return None
    name, key = settings.azure_storage_account_name, settings.azure_storage_account_key
    return AzureAccount(name, key.get_secret_value()) if name and key else None


@dataclass(frozen=True)
class AzureSource:
    """Label Studio's Azure Blob source storage for a dataset."""

    container: str
    prefix: str
    account: AzureAccount

    def connect(self, client: LabelStudioClient, project_id: int) -> int:
        # An emulator's endpoint is passed through and the bytes are proxied (its presigned
        # URLs would name the real host).
        emulated = self.account.emulated
        return client.connect_azure_source(
            project_id,
            container=self.container,
            prefix=self.prefix,
            account_name=self.account.name,
            account_key=self.account.key,
            presign=not emulated,
            blob_endpoint=self.account.blob_endpoint if emulated else None,
        )


class Azure:
    name: CloudName = "azure"
    scheme = "az"
    stand_in: StandIn | None = StandIn(service="azure", setting="local_azure")
    bucket_setting = "LOOP_AZURE_CONTAINER"
    credentials_hint = ACCOUNT_VARIABLES
    label_studio_read_only: ReadOnlyCredentials | None = None
    secret_name = "annotation-loop-azure"

    def bucket_uri(self, settings: AzureSettings) -> str:
        return f"az://{settings.azure_container}"

    def endpoint_url(self, settings: AzureSettings) -> str | None:
        return None  # an emulator's is part of the connection string

    def stand_in_settings(self, settings: AzureSettings) -> dict[str, Any]:
        return {
            "azure_storage_connection_string": SecretStr(settings.local_azure_connection_string)
        }

    def _secret_values(self, settings: AzureSettings) -> dict[str, str]:
        name = settings.azure_storage_account_name
        if settings.azure_storage_connection_string:
            connection_string = settings.azure_storage_connection_string.get_secret_value()
            parse_azure_connection_string(connection_string)
            return {"connection_string": connection_string}
        if name and settings.azure_storage_account_key:
            key = settings.azure_storage_account_key.get_secret_value()
            return {"account_name": name, "account_key": key}
        if name and settings.azure_storage_sas_token:
            token = settings.azure_storage_sas_token.get_secret_value()
            return {"account_name": name, "sas_token": token}
        return {}

    def artifact_store(self, settings: AzureSettings) -> ArtifactStoreSpec:
        return ArtifactStoreSpec(
            flavor="azure",
            path=f"{self.bucket_uri(settings)}/{ARTIFACTS_FOLDER}",
            secret_name=self.secret_name,
            secret_values=self._secret_values(settings),
        )

    def client_environment(self, settings: AzureSettings) -> dict[str, str]:
        secrets = {
            "AZURE_STORAGE_CONNECTION_STRING": settings.azure_storage_connection_string,
            "AZURE_STORAGE_ACCOUNT_KEY": settings.azure_storage_account_key,
            "AZURE_STORAGE_SAS_TOKEN": settings.azure_storage_sas_token,
        }
        env = {name: value.get_secret_value() for name, value in secrets.items() if value}
        if settings.azure_storage_account_name:
            env["AZURE_STORAGE_ACCOUNT_NAME"] = settings.azure_storage_account_name
        return env

    def storage_options(self, source: DataSource) -> dict[str, Any]:
        return {}  # adlfs reads the AZURE_STORAGE_* variables itself

    async def list_page(
        self, fs: Any, bucket: str, prefix: str, token: str | None, limit: int
    ) -> Page:
        # adlfs's find collects the whole listing; the SDK's list_blobs pages lazily.
        container = fs.service_client.get_container_client(bucket)
        pages = container.list_blobs(
            name_starts_with=prefix, include=["metadata"], results_per_page=limit
        ).by_page(continuation_token=token)
        entries = [
            {
                "name": f"{bucket}/{blob.name}",
                "size": blob.size,
                "etag": blob.etag,
                "content_settings": blob.content_settings,
            }
            async for blob in await pages.__anext__()
            if (blob.metadata or {}).get("hdi_isfolder") != "true"  # a Data Lake folder
        ]
        return entries, pages.continuation_token

    def label_studio_source(self, source: DataSource, settings: AzureSettings) -> SourceConnection:
        account = azure_account(settings)
        if account is None:
            return SourceConnection(None, f"no Azure account name and key ({ACCOUNT_VARIABLES})")
        _, container, _ = split_uri(source.root_uri)
        return SourceConnection(
            AzureSource(container=container, prefix=source.dataset, account=account),
            write_keys_warning=None if is_stand_in(account.blob_endpoint) else WRITE_KEYS_WARNING,
            check_cors=not account.emulated,
        )

    def _service(self, settings: AzureSettings) -> BlobServiceClient:
        from azure.storage.blob import BlobServiceClient

        if settings.azure_storage_connection_string:
            return BlobServiceClient.from_connection_string(
                settings.azure_storage_connection_string.get_secret_value()
            )
        account = azure_account(settings)
        if account is None:
            raise ConfigurationError(f"No Azure account name and key: set {ACCOUNT_VARIABLES}")
        return BlobServiceClient(
            f"https://{account.name}.blob.core.windows.net",
            credential={"account_name": account.name, "account_key": account.key},
        )

    def missing_cors_fix(self, source: DataSource, settings: AzureSettings) -> str | None:
        service = self._service(settings)
        if list(service.get_service_properties().get("cors") or []):
            return None
        return (
            f"az storage cors add --services b --methods GET HEAD --origins <label-studio-url> "
            f"--account-name {service.account_name} (see cloud_config/azure/README.md)"
        )


AZURE = Azure()
