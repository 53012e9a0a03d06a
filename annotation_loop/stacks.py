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

from annotation_loop.errors import ConfigurationError
from annotation_loop.settings import Settings

LABEL_STUDIO_SECRET = "annotation-loop-label-studio"
S3_SECRET = "annotation-loop-s3"
ANNOTATOR = "annotation-loop-label-studio"
ORCHESTRATOR = "default"
IMPLEMENTED_CLOUDS = ("local", "aws")


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


def _artifact_store(cloud: str, settings: Settings) -> ComponentSpec:
    name = f"annotation-loop-{cloud}-artifacts"
    path = settings.artifact_store_uri(cloud)
    if cloud == "local":
        return ComponentSpec(name, "local", StackComponentType.ARTIFACT_STORE, {"path": path})
    client_kwargs: dict[str, Any] = {"region_name": settings.aws_region}
    if settings.s3_endpoint_url:
        client_kwargs["endpoint_url"] = settings.s3_endpoint_url
    configuration: dict[str, Any] = {"path": path, "client_kwargs": client_kwargs}
    if settings.aws_access_key_id and settings.aws_secret_access_key:
        configuration["authentication_secret"] = S3_SECRET
    return ComponentSpec(name, "s3", StackComponentType.ARTIFACT_STORE, configuration)


def register_stack(cloud: str, settings: Settings, activate: bool = True) -> str:
    """Creates or updates the stack for `cloud` and (by default) activates it."""
    if cloud not in IMPLEMENTED_CLOUDS:
        raise ConfigurationError(
            f"The {cloud!r} stack is not available yet (coming next: GCS and Azure Blob); "
            f"use one of {', '.join(IMPLEMENTED_CLOUDS)}"
        )
    client = Client()
    _ensure_secret(
        client, LABEL_STUDIO_SECRET, {"api_key": settings.label_studio_api_key.get_secret_value()}
    )
    if cloud == "aws" and settings.aws_access_key_id and settings.aws_secret_access_key:
        # Without explicit keys the artifact store falls back to boto's default chain
        # (instance profile, IRSA, ~/.aws), which is what remote orchestrators use.
        _ensure_secret(
            client,
            S3_SECRET,
            {
                "aws_access_key_id": settings.aws_access_key_id.get_secret_value(),
                "aws_secret_access_key": settings.aws_secret_access_key.get_secret_value(),
            },
        )
    artifact_store = _artifact_store(cloud, settings)
    annotator = _annotator(settings)
    for spec in (artifact_store, annotator):
        _ensure_component(client, spec)
    components = {
        StackComponentType.ARTIFACT_STORE: artifact_store.name,
        StackComponentType.ORCHESTRATOR: ORCHESTRATOR,
        StackComponentType.ANNOTATOR: annotator.name,
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
