"""Registers the project's ZenML stacks from `Settings`, idempotently.

Each cloud gets one stack `annotation-loop-<cloud>`: an artifact store, the local
orchestrator, and a Label Studio annotator whose API key lives in a ZenML secret.
Re-registering with changed settings updates the components in place.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from zenml.client import Client
from zenml.enums import StackComponentType

from annotation_loop.clouds.credentials import (
    parse_azure_connection_string,
    read_service_account_json,
)
from annotation_loop.errors import ConfigurationError
from annotation_loop.settings import CLOUDS, Settings

LABEL_STUDIO_SECRET = "annotation-loop-label-studio"
ANNOTATOR = "annotation-loop-label-studio"
# ZenML artifact store flavor and credentials secret per cloud
ARTIFACT_STORE_FLAVORS = {"local": "local", "aws": "s3", "gcp": "gcp", "azure": "azure"}
CLOUD_SECRETS = {
    "aws": "annotation-loop-s3",
    "gcp": "annotation-loop-gcp",
    "azure": "annotation-loop-azure",
}


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    flavor: str
    component_type: StackComponentType
    configuration: dict[str, Any]


def stack_name(cloud: str) -> str:
    return f"annotation-loop-{cloud}"


def _ensure_secret(client: Client, name: str, values: dict[str, str]) -> None:
    try:
        existing = client.get_secret(name, allow_partial_name_match=False)
    except KeyError:
        client.create_secret(name=name, values=values)
        return
    if existing.secret_values != values:
        client.update_secret(name, add_or_update_values=values)


def _ensure_component(client: Client, spec: ComponentSpec) -> None:
    try:
        existing = client.get_stack_component(
            spec.component_type, spec.name, allow_name_prefix_match=False
        )
    except KeyError:
        client.create_stack_component(
            name=spec.name,
            flavor=spec.flavor,
            component_type=spec.component_type,
            configuration=spec.configuration,
        )
        return
    if existing.flavor_name != spec.flavor:
        raise ConfigurationError(
            f"ZenML component {spec.name!r} exists with flavor {existing.flavor_name!r}, "
            f"expected {spec.flavor!r}: delete it with `zenml {spec.component_type.value} "
            f"delete {spec.name}`"
        )
    if any(existing.configuration.get(k) != v for k, v in spec.configuration.items()):
        client.update_stack_component(
            spec.name, spec.component_type, configuration=spec.configuration
        )


def _annotator(settings: Settings) -> ComponentSpec:
    url = settings.label_studio_url.rstrip("/")
    scheme_host, _, port = url.rpartition(":")
    has_port = port.isdigit() and "//" in scheme_host
    return ComponentSpec(
        name=ANNOTATOR,
        flavor="label_studio",
        component_type=StackComponentType.ANNOTATOR,
        configuration={
            "instance_url": scheme_host if has_port else url,
            "port": int(port) if has_port else None,
            "authentication_secret": LABEL_STUDIO_SECRET,
        },
    )


def cloud_credentials(cloud: str, settings: Settings) -> dict[str, str]:
    """The secret values of a cloud's artifact store; empty means "the environment's own"
    (instance profile, workload identity, an emulator), as on a remote orchestrator."""
    if cloud == "aws" and settings.aws_access_key_id and settings.aws_secret_access_key:
        return {
            "aws_access_key_id": settings.aws_access_key_id.get_secret_value(),
            "aws_secret_access_key": settings.aws_secret_access_key.get_secret_value(),
        }
    if cloud == "gcp" and settings.google_application_credentials:
        return {"token": read_service_account_json(settings.google_application_credentials)}
    if cloud == "azure":
        if settings.azure_storage_connection_string:
            connection_string = settings.azure_storage_connection_string.get_secret_value()
            parse_azure_connection_string(connection_string)
            return {"connection_string": connection_string}
        if settings.azure_storage_account_name and settings.azure_storage_account_key:
            return {
                "account_name": settings.azure_storage_account_name,
                "account_key": settings.azure_storage_account_key.get_secret_value(),
            }
        if settings.azure_storage_account_name and settings.azure_storage_sas_token:
            return {
                "account_name": settings.azure_storage_account_name,
                "sas_token": settings.azure_storage_sas_token.get_secret_value(),
            }
    return {}


def _artifact_store(cloud: str, settings: Settings, authenticated: bool) -> ComponentSpec:
    configuration: dict[str, Any] = {"path": settings.artifact_store_uri(cloud)}
    if cloud == "aws":
        client_kwargs: dict[str, Any] = {"region_name": settings.aws_region}
        if settings.s3_endpoint_url:
            client_kwargs["endpoint_url"] = settings.s3_endpoint_url
        configuration["client_kwargs"] = client_kwargs
    if cloud != "local":
        # None clears a secret from an earlier registration that had one.
        configuration["authentication_secret"] = CLOUD_SECRETS[cloud] if authenticated else None
    return ComponentSpec(
        f"annotation-loop-{cloud}-artifacts",
        ARTIFACT_STORE_FLAVORS[cloud],
        StackComponentType.ARTIFACT_STORE,
        configuration,
    )


def register_stack(cloud: str, settings: Settings, activate: bool = True) -> str:
    """Creates or updates the stack for `cloud` and (by default) activates it."""
    if cloud not in CLOUDS:
        raise ConfigurationError(f"Unknown cloud {cloud!r}: use one of {', '.join(CLOUDS)}")
    # Validate every credential before writing anything.
    credentials = cloud_credentials(cloud, settings)
    client = Client()
    _ensure_secret(
        client, LABEL_STUDIO_SECRET, {"api_key": settings.label_studio_api_key.get_secret_value()}
    )
    if credentials:
        _ensure_secret(client, CLOUD_SECRETS[cloud], credentials)
    artifact_store = _artifact_store(cloud, settings, authenticated=bool(credentials))
    annotator = _annotator(settings)
    for spec in (artifact_store, annotator):
        _ensure_component(client, spec)
    components: dict[StackComponentType, str | list[str]] = {
        StackComponentType.ARTIFACT_STORE: artifact_store.name,
        StackComponentType.ORCHESTRATOR: settings.orchestrator,
        StackComponentType.ANNOTATOR: annotator.name,
        # An empty list removes a step operator that an earlier registration added.
        StackComponentType.STEP_OPERATOR: (
            [settings.step_operator] if settings.step_operator else []
        ),
    }
    name = stack_name(cloud)
    try:
        client.get_stack(name, allow_name_prefix_match=False)
    except KeyError:
        client.create_stack(name=name, components=components)
    else:
        client.update_stack(name, component_updates=components)
    if activate:
        client.activate_stack(name)
    return name
