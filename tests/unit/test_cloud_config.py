"""cloud_config/ stays true: files parse, grant no more than documented, and name only ZenML
flavors, config keys and settings that exist in the installed ZenML (offline, no store)."""

from __future__ import annotations

import contextlib
import json
import re
import shlex
import subprocess
import typing
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from annotation_loop.settings import PROJECT_ROOT, Settings

CLOUD_CONFIG = PROJECT_ROOT / "cloud_config"
CLOUDS = ("aws", "gcp", "azure")
ORIGIN = "https://label-studio.example.com"
SCRIPTS = sorted(CLOUD_CONFIG.glob("*/*.sh"))
GPU_CONFIGS = sorted(CLOUD_CONFIG.glob("*/gpu_*.yaml"))
# `zenml <component> register` options that are not config keys of the flavor
META_OPTIONS = {"flavor", "label", "connector", "resource-id", "secret", "env"}
STACK_OPTIONS = {
    "-a": "artifact_store",
    "--artifact-store": "artifact_store",
    "-o": "orchestrator",
    "--orchestrator": "orchestrator",
    "-c": "container_registry",
    "--container_registry": "container_registry",
    "-i": "image_builder",
    "--image_builder": "image_builder",
    "-s": "step_operator",
    "--step_operator": "step_operator",
    "-an": "annotator",
    "--annotator": "annotator",
}


# -- reading the files ---------------------------------------------------------------------
@dataclass(frozen=True)
class Registration:
    component_type: str  # StackComponentType value: artifact_store, step_operator, ...
    name: str
    flavor: str
    config: dict[str, str]


def zenml_commands(script: Path) -> Iterator[list[str]]:
    """The arguments after `zenml` of every command in a shell script."""
    for line in script.read_text().replace("\\\n", " ").splitlines():
        tokens = shlex.split(line, comments=True)
        if "zenml" in tokens:
            yield tokens[tokens.index("zenml") + 1 :]


def options(args: list[str]) -> dict[str, str]:
    """`--key=value` arguments; the zenml CLI takes config keys only in this form."""
    return dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)


def registrations(script: Path) -> list[Registration]:
    found = []
    for args in zenml_commands(script):
        if len(args) < 3 or args[1] != "register" or args[0] == "stack":
            continue
        opts = options(args)
        flavor = opts.get("flavor") or args[args.index("-f") + 1]
        config = {k: v for k, v in opts.items() if k not in META_OPTIONS}
        found.append(Registration(args[0].replace("-", "_"), args[2], flavor, config))
    return found


def stack_components(args: list[str]) -> dict[str, str]:
    """Component type -> name of a `zenml stack register|update` command."""
    return {STACK_OPTIONS[a]: args[i + 1] for i, a in enumerate(args) if a in STACK_OPTIONS}


def secrets_created(script: Path) -> dict[str, set[str]]:
    created: dict[str, set[str]] = {}
    for args in zenml_commands(script):
        if args[:2] == ["secret", "create"]:
            created.setdefault(args[2], set()).update(options(args))
    return created


def load(path: Path) -> Any:
    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)


# -- ZenML's own registry --------------------------------------------------------------------
@pytest.fixture(scope="module")
def flavors() -> dict[tuple[str, str], Any]:
    """(component type, flavor name) -> flavor, built-in and from every integration."""
    from zenml.integrations.registry import integration_registry
    from zenml.stack.flavor_registry import FlavorRegistry

    classes = list(FlavorRegistry().builtin_flavors)
    for integration in integration_registry.integrations.values():
        classes.extend(integration.flavors())
    return {(flavor.type.value, flavor.name): flavor for flavor in (c() for c in classes)}


def settings_class(flavor: Any) -> type[BaseModel]:
    """The step/pipeline settings class a flavor's config is built from."""
    from zenml.config.base_settings import BaseSettings
    from zenml.stack.stack_component import StackComponentConfig

    for cls in flavor.config_class.__mro__:
        if issubclass(cls, BaseSettings) and not issubclass(cls, StackComponentConfig):
            return cls
    raise AssertionError(f"{flavor.name} {flavor.type.value} has no settings class")


def assert_known_keys(model: type[BaseModel], values: dict[str, Any], where: str) -> None:
    """Every key, nested models' included, is a field: settings accept unknown keys silently."""
    unknown = set(values) - set(model.model_fields)
    assert not unknown, f"{where}: {model.__name__} has no fields {unknown}"
    for name, value in values.items():
        annotation = model.model_fields[name].annotation
        for candidate in (annotation, *typing.get_args(annotation)):
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                assert_known_keys(candidate, value, f"{where}.{name}")


# -- every file parses ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "path",
    sorted([*CLOUD_CONFIG.glob("*/*.json"), *CLOUD_CONFIG.glob("*/*.yaml")]),
    ids=lambda p: str(p.relative_to(CLOUD_CONFIG)),
)
def test_every_json_and_yaml_file_parses(path: Path) -> None:
    assert load(path)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(CLOUD_CONFIG)))
def test_every_script_is_valid_bash(script: Path) -> None:
    subprocess.run(["bash", "-n", str(script)], check=True)


# -- least privilege --------------------------------------------------------------------------
def grants(policy: dict[str, Any]) -> set[tuple[str, str]]:
    pairs = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow" and set(statement) <= {
            "Sid",
            "Effect",
            "Action",
            "Resource",
        }
        actions, resources = statement["Action"], statement["Resource"]
        for action in [actions] if isinstance(actions, str) else actions:
            for resource in [resources] if isinstance(resources, str) else resources:
                pairs.add((action, resource))
    return pairs


def test_aws_policy_grants_the_four_actions_on_the_one_bucket_only() -> None:
    assert grants(load(CLOUD_CONFIG / "aws/iam-policy.json")) == {
        ("s3:ListBucket", "arn:aws:s3:::BUCKET"),
        ("s3:GetObject", "arn:aws:s3:::BUCKET/*"),
        ("s3:PutObject", "arn:aws:s3:::BUCKET/*"),
        ("s3:DeleteObject", "arn:aws:s3:::BUCKET/*"),
    }


def test_aws_label_studio_policy_is_read_only() -> None:
    assert grants(load(CLOUD_CONFIG / "aws/iam-policy-label-studio-readonly.json")) == {
        ("s3:ListBucket", "arn:aws:s3:::BUCKET"),
        ("s3:GetObject", "arn:aws:s3:::BUCKET/*"),
    }


def test_gcp_roles_hold_only_the_bucket_permissions() -> None:
    loop = set(load(CLOUD_CONFIG / "gcp/role.yaml")["includedPermissions"])
    label_studio = set(
        load(CLOUD_CONFIG / "gcp/role-label-studio-readonly.yaml")["includedPermissions"]
    )
    read = {"storage.buckets.get", "storage.objects.list", "storage.objects.get"}
    assert loop == read | {"storage.objects.create", "storage.objects.delete"}
    assert label_studio == read


def test_azure_role_reads_writes_deletes_blobs_and_nothing_on_the_account() -> None:
    role = load(CLOUD_CONFIG / "azure/role.json")
    blobs = "Microsoft.Storage/storageAccounts/blobServices/containers/blobs"
    assert role["Actions"] == ["Microsoft.Storage/storageAccounts/blobServices/containers/read"]
    assert set(role["DataActions"]) == {f"{blobs}/read", f"{blobs}/write", f"{blobs}/delete"}
    assert role["IsCustom"] and not role["NotActions"] and not role["NotDataActions"]
    assert all(scope.startswith("/subscriptions/") for scope in role["AssignableScopes"])


# -- CORS: reads from the Label Studio origin only ---------------------------------------------
def azure_cors_command() -> list[str]:
    """The `az storage cors add` command that azure/README.md tells users to run."""
    readme = (CLOUD_CONFIG / "azure/README.md").read_text().replace("\\\n", " ")
    commands = [c for c in readme.splitlines() if c.strip().startswith("az storage cors add")]
    assert len(commands) == 1, "azure/README.md should hold one `az storage cors add` command"
    return shlex.split(commands[0])


def flag_values(args: list[str], flag: str) -> list[str]:
    start = args.index(flag) + 1
    end = next((i for i in range(start, len(args)) if args[i].startswith("--")), len(args))
    return args[start:end]


def cors_rules(where: str) -> list[tuple[list[str], list[str]]]:
    """(origins, methods) of each CORS rule in one place."""
    if where == "azure/README.md":
        command = azure_cors_command()
        assert flag_values(command, "--services") == ["b"]
        return [(flag_values(command, "--origins"), flag_values(command, "--methods"))]
    data = load(CLOUD_CONFIG / where)
    if where == "aws/cors.json":
        return [(r["AllowedOrigins"], r["AllowedMethods"]) for r in data["CORSRules"]]
    if where == "gcp/cors.json":
        return [(r["origin"], r["method"]) for r in data]
    return [(r["allowedOrigins"], r["allowedMethods"]) for r in data["corsRules"]]


@pytest.mark.parametrize(
    "where", ["aws/cors.json", "gcp/cors.json", "azure/cors.json", "azure/README.md"]
)
def test_cors_allows_only_get_and_head_from_the_label_studio_origin(where: str) -> None:
    rules = cors_rules(where)
    assert rules
    for origins, methods in rules:
        assert origins == [ORIGIN]
        assert sorted(methods) == ["GET", "HEAD"]


def test_azure_cors_command_matches_the_template() -> None:
    command = azure_cors_command()
    (rule,) = load(CLOUD_CONFIG / "azure/cors.json")["corsRules"]
    assert int(*flag_values(command, "--max-age")) == rule["maxAgeInSeconds"]
    assert flag_values(command, "--exposed-headers") == rule["exposedHeaders"]
    assert flag_values(command, "--allowed-headers") == rule["allowedHeaders"]
    assert flag_values(command, "--origins") == rule["allowedOrigins"]


# -- ZenML: flavors, config keys, names --------------------------------------------------------
ALL_REGISTRATIONS = [(s, r) for s in SCRIPTS for r in registrations(s)]


def test_scripts_register_components() -> None:
    assert {r.component_type for _, r in ALL_REGISTRATIONS} >= {
        "artifact_store",
        "annotator",
        "orchestrator",
        "step_operator",
        "container_registry",
        "image_builder",
    }


@pytest.mark.parametrize(
    "script, registration",
    ALL_REGISTRATIONS,
    ids=[f"{s.parent.name}-{r.name}-{r.flavor}" for s, r in ALL_REGISTRATIONS],
)
def test_registered_flavor_and_its_config_keys_exist_in_zenml(
    flavors: dict[tuple[str, str], Any], script: Path, registration: Registration
) -> None:
    flavor = flavors.get((registration.component_type, registration.flavor))
    assert flavor, f"{script.name}: no {registration.component_type} flavor {registration.flavor!r}"
    fields = flavor.config_class.model_fields
    unknown = set(registration.config) - set(fields)
    assert not unknown, f"{script.name}: {registration.flavor} has no config keys {unknown}"
    required = {name for name, field in fields.items() if field.is_required()}
    assert required <= set(registration.config), f"{script.name}: {registration.name} lacks keys"


def test_integrations_the_scripts_install_exist() -> None:
    from zenml.integrations.registry import integration_registry

    for script in SCRIPTS:
        for args in zenml_commands(script):
            if args[:2] == ["integration", "install"]:
                names = [a for a in args[2:] if not a.startswith("-")]
                assert set(names) <= set(integration_registry.integrations), script


@pytest.mark.parametrize("cloud", CLOUDS)
def test_stack_script_matches_what_run_py_registers(cloud: str) -> None:
    from zenml.secret.schemas import AWSSecretSchema, AzureSecretSchema, GCPSecretSchema

    from annotation_loop.clouds import get_cloud
    from annotation_loop.zenml_integration import stacks

    spec = get_cloud(cloud).artifact_store(Settings())
    registered = stacks.artifact_store_component(cloud, spec)
    secret_name = spec.secret_name
    script = CLOUD_CONFIG / cloud / "stack.sh"
    by_type = {r.component_type: r for r in registrations(script)}
    store, annotator = by_type["artifact_store"], by_type["annotator"]
    assert store.name == registered.name
    assert store.flavor == registered.flavor
    assert secret_name and store.config["authentication_secret"] == secret_name
    assert annotator.name == stacks.ANNOTATOR
    assert annotator.config["authentication_secret"] == stacks.LABEL_STUDIO_SECRET
    schemas: dict[str, type[BaseModel]] = {
        "aws": AWSSecretSchema,
        "gcp": GCPSecretSchema,
        "azure": AzureSecretSchema,
    }
    schema = schemas[cloud]
    secrets = secrets_created(script)
    assert secrets[stacks.LABEL_STUDIO_SECRET] == {"api_key"}
    assert secrets[secret_name] <= set(schema.model_fields)
    stack_commands = [args for args in zenml_commands(script) if args[0] == "stack"]
    assert [args[:3] for args in stack_commands] == [
        ["stack", "register", stacks.stack_name(cloud)],
        ["stack", "set", stacks.stack_name(cloud)],
    ]
    assert stack_components(stack_commands[0]) == {
        "artifact_store": store.name,
        "orchestrator": Settings().orchestrator,
        "annotator": annotator.name,
    }


# Keys of ZenML's secret schemas whose values are secret (an access key id or account name is not).
SECRET_VALUES = {
    "api_key",
    "aws_secret_access_key",
    "connection_string",
    "account_key",
    "sas_token",
}


@pytest.mark.parametrize("cloud", CLOUDS)
def test_stack_scripts_pass_secret_values_as_files_not_arguments(cloud: str) -> None:
    script = CLOUD_CONFIG / cloud / "stack.sh"
    passed = {
        key: value
        for args in zenml_commands(script)
        if args[:2] == ["secret", "create"]
        for key, value in options(args).items()
        if key in SECRET_VALUES
    }
    assert passed, "the script creates no secret"
    # `--key=@file`: the zenml CLI reads the value from the file, so `ps` shows only its path.
    assert all(value.startswith("@") for value in passed.values()), passed


def known_components(script: Path) -> dict[str, set[str]]:
    """Components a remote script may put in a stack: its own, and its cloud's stack.sh's."""
    known: dict[str, set[str]] = {"orchestrator": {"default"}}
    clouds = CLOUDS if script.parent.name == "kubernetes" else (script.parent.name,)
    sources = [script, *(CLOUD_CONFIG / c / "stack.sh" for c in clouds)]
    for source in sources:
        for r in registrations(source):
            known.setdefault(r.component_type, set()).add(r.name)
    return known


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: str(p.relative_to(CLOUD_CONFIG)))
def test_stacks_use_only_components_that_are_registered(script: Path) -> None:
    known = known_components(script)
    clouds = CLOUDS if script.parent.name == "kubernetes" else (script.parent.name,)
    for args in zenml_commands(script):
        if args[0] != "stack" or args[1] not in {"register", "update"}:
            continue
        for component_type, name in stack_components(args).items():
            names = {name.replace("$CLOUD", cloud) for cloud in clouds}
            assert names <= known[component_type], f"{script.name}: {component_type} {name}"


# -- GPU settings for train_model ------------------------------------------------------------
@pytest.mark.parametrize("path", GPU_CONFIGS, ids=lambda p: str(p.relative_to(CLOUD_CONFIG)))
def test_gpu_settings_are_valid_for_the_flavor_the_script_registers(
    flavors: dict[tuple[str, str], Any], path: Path
) -> None:
    from zenml.config.pipeline_run_configuration import PipelineRunConfiguration

    data = load(path)
    PipelineRunConfiguration.model_validate(data)
    training_pipeline = (PROJECT_ROOT / "pipelines/training.py").read_text()
    for step_name, step in data["steps"].items():
        assert re.search(rf"\b{step_name}\b", training_pipeline), f"no step {step_name}"
        registered = {
            (r.component_type, r.flavor): r.name for r in registrations(path.parent / "remote.sh")
        }
        for key, values in step["settings"].items():
            component_type, flavor_name = key.split(".")
            flavor = flavors[(component_type, flavor_name)]
            assert_known_keys(settings_class(flavor), values, key)
            # Some validators import the integration's client library (pod settings need
            # `kubernetes`), which the project does not install; the keys were checked above.
            with contextlib.suppress(ModuleNotFoundError):
                settings_class(flavor).model_validate(values)
            assert (component_type, flavor_name) in registered, f"remote.sh registers no {key}"
            if component_type == "step_operator":
                assert step["step_operator"] == registered[(component_type, flavor_name)]


# -- Label Studio's read-only credentials ------------------------------------------------------
def test_label_studios_read_only_credentials_are_settings_documented_with_their_policy() -> None:
    """Label Studio's own credentials are Settings fields (so `.env` works and a retraining
    run inherits them), and each cloud's README names them and the policy the warning points
    to, which exists."""
    from annotation_loop.clouds import get_cloud

    for cloud in ("aws", "gcp"):
        option = get_cloud(cloud).label_studio_read_only
        assert option is not None, cloud
        assert (PROJECT_ROOT / option.policy).is_file()
        readme = (CLOUD_CONFIG / cloud / "README.md").read_text()
        assert Path(option.policy).name in readme
        assert set(option.settings) <= set(Settings.model_fields)
        for variable in option.variables:
            assert variable in readme
            assert variable in option.write_keys_warning()
    assert get_cloud("azure").label_studio_read_only is None
    azure = (CLOUD_CONFIG / "azure/README.md").read_text()
    assert "no read-only" in azure.replace("\n", " ")
