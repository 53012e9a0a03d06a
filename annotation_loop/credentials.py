"""Cloud credentials from settings, checked before anything is written with them."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from annotation_loop.errors import ConfigurationError

SERVICE_ACCOUNT_FIELDS = ("type", "project_id", "private_key", "client_email", "token_uri")
AZURE_CREDENTIAL_KEYS = ("AccountKey", "SharedAccessSignature")


def read_service_account_json(path: Path) -> str:
    """The content of a GCP service-account key file, validated."""
    fix = "create one with `gcloud iam service-accounts keys create key.json --iam-account=...`"
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigurationError(
            f"GOOGLE_APPLICATION_CREDENTIALS={path} cannot be read ({exc.strerror}): {fix}"
        ) from exc
    try:
        key = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(
            f"GOOGLE_APPLICATION_CREDENTIALS={path} is not valid JSON (line {exc.lineno}): {fix}"
        ) from exc
    if not isinstance(key, dict) or key.get("type") != "service_account":
        raise ConfigurationError(
            f'GOOGLE_APPLICATION_CREDENTIALS={path} is not a service-account key ("type" must '
            f'be "service_account"): {fix}'
        )
    missing = [field for field in SERVICE_ACCOUNT_FIELDS if not key.get(field)]
    if missing:
        raise ConfigurationError(
            f"GOOGLE_APPLICATION_CREDENTIALS={path} lacks {', '.join(missing)}: {fix}"
        )
    return text


def parse_azure_connection_string(connection_string: str) -> dict[str, str]:
    """`Key=Value;...` pairs of a connection string that can authenticate."""
    parts = dict(item.split("=", 1) for item in connection_string.strip().split(";") if "=" in item)
    if "AccountName" not in parts and "BlobEndpoint" not in parts:
        raise ConfigurationError(
            "AZURE_STORAGE_CONNECTION_STRING has no AccountName: copy it from the storage "
            "account's 'Access keys' page in the Azure portal"
        )
    if not any(parts.get(key) for key in AZURE_CREDENTIAL_KEYS):
        raise ConfigurationError(
            "AZURE_STORAGE_CONNECTION_STRING has no AccountKey or SharedAccessSignature: use "
            "the full string from the storage account's 'Access keys' page"
        )
    return parts


@dataclass(frozen=True)
class AzureAccount:
    name: str
    key: str
    blob_endpoint: str | None = None  # set for emulators and sovereign clouds


def azure_account(env: Mapping[str, str]) -> AzureAccount | None:
    """Account name and key from AZURE_STORAGE_* variables (a connection string first)."""
    connection_string = env.get("AZURE_STORAGE_CONNECTION_STRING")
    if connection_string:
        parts = parse_azure_connection_string(connection_string)
        if parts.get("AccountName") and parts.get("AccountKey"):
            return AzureAccount(
                parts["AccountName"], parts["AccountKey"], parts.get("BlobEndpoint")
            )
        return None
    name, key = env.get("AZURE_STORAGE_ACCOUNT_NAME"), env.get("AZURE_STORAGE_ACCOUNT_KEY")
    return AzureAccount(name, key) if name and key else None
