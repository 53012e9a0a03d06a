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

from annotation_loop.clouds import get_cloud
from annotation_loop.clouds.base import ArtifactStoreSpec
from annotation_loop.errors import ConfigurationError
from annotation_loop.settings import Settings

LABEL_STUDIO_SECRET = "annotation-loop-label-studio"
ANNOTATOR = "annotation-loop-label-studio"


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


def artifact_store_component(cloud: str, store: ArtifactStoreSpec) -> ComponentSpec:
    configuration: dict[str, Any] = {"path": store.path, **store.configuration}
    if store.secret_name:
        # None clears a secret from an earlier registration that had one.
        configuration["authentication_secret"] = store.secret_name if store.secret_values else None
    return ComponentSpec(
        f"annotation-loop-{cloud}-artifacts",
        store.flavor,
        StackComponentType.ARTIFACT_STORE,
        configuration,
    )


def register_stack(cloud: str, settings: Settings, activate: bool = True) -> str:
    """Creates or updates the stack for `cloud` and (by default) activates it."""
    # Every credential is validated before anything is written.
    store = get_cloud(cloud).artifact_store(settings)
    client = Client()
    _ensure_secret(
        client, LABEL_STUDIO_SECRET, {"api_key": settings.label_studio_api_key.get_secret_value()}
    )
    if store.secret_name and store.secret_values:
        _ensure_secret(client, store.secret_name, store.secret_values)
    artifact_store = artifact_store_component(cloud, store)
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
