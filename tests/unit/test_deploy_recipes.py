"""The Dockerfile and cloud_config/deploy/ recipes agree with what `run.py serve` accepts: its
start command and options, one port everywhere, only variables the loop (or ZenML) reads, and
secrets only from the platform's secret store. `run.py` is asked through its `--help`, in a
subprocess, not imported."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import AliasChoices

from annotation_loop.settings import PROJECT_ROOT, Settings

DOCKERFILE = PROJECT_ROOT / "Dockerfile"
DEPLOY = PROJECT_ROOT / "cloud_config" / "deploy"
START = ["python", "run.py", "serve"]
# Variables the recipes may set beyond the loop's own: ZenML's client (the team's server holding
# the production model) and the image's runtime defaults.
OTHER_VARIABLES = {
    "ZENML_STORE_URL",
    "ZENML_STORE_API_KEY",
    "ZENML_ANALYTICS_OPT_IN",
    "PYTHONUNBUFFERED",
    "XDG_CACHE_HOME",
    "MPLCONFIGDIR",
}
SECRET_MARKERS = (
    "API_KEY",
    "PASSWORD",
    "SECRET",
    "TOKEN",
    "CONNECTION_STRING",
    "ACCESS_KEY",
    "ACCOUNT_KEY",
)


@dataclass
class Container:
    """What a recipe gives the image: variables (a literal, or None for a secret reference),
    its port, its health checks' ports and any start command it overrides."""

    recipe: str
    literals: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)  # variable -> reference
    ports: set[int] = field(default_factory=set)
    health_ports: list[int] = field(default_factory=list)
    command: list[str] | None = None

    @property
    def variables(self) -> set[str]:
        return set(self.literals) | set(self.secrets)


@dataclass(frozen=True)
class ServeOptions:
    takes_value: dict[str, bool]  # option -> whether it takes a value
    envvars: set[str]


def serve_options() -> ServeOptions:
    help_text = subprocess.run(
        [sys.executable, "run.py", "serve", "--help"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    options = {
        match[1]: bool(match[2])
        for match in re.finditer(r"^\s+(--[a-z][\w-]*)( \S+)?(?=\s{2,}|$)", help_text, re.M)
    }
    envvars = set(re.findall(r"env var:\s+([A-Z_][A-Z0-9_]*)", help_text))
    return ServeOptions(options, envvars)


@pytest.fixture(scope="module")
def serve() -> ServeOptions:
    return serve_options()


def settings_variables() -> set[str]:
    names = set()
    prefix = Settings.model_config.get("env_prefix", "")
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias  # pydantic-settings reads only the aliases then
        if alias is None:
            names.add(f"{prefix}{name}".upper())
        elif isinstance(alias, str):
            names.add(alias.upper())
        elif isinstance(alias, AliasChoices):
            names.update(choice.upper() for choice in alias.choices if isinstance(choice, str))
    return names


# --- the Dockerfile -------------------------------------------------------------------------


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


@dataclass(frozen=True)
class Image:
    command: list[str]
    exposed: list[int]
    env: dict[str, str]
    health_command: list[str]


def parse_dockerfile(text: str) -> Image:
    instructions = dockerfile_instructions(text)
    keywords = [keyword for keyword, _ in instructions]
    assert "ENTRYPOINT" not in keywords, "the start command is CMD alone"
    [cmd] = [rest for keyword, rest in instructions if keyword == "CMD"]
    command = json.loads(cmd)  # exec form: no shell between the platform and serve
    exposed = [
        int(port.split("/")[0])
        for keyword, rest in instructions
        if keyword == "EXPOSE"
        for port in rest.split()
    ]
    env: dict[str, str] = {}
    for keyword, rest in instructions:
        if keyword == "ENV":
            for pair in shlex.split(rest):
                name, _, value = pair.partition("=")
                env[name] = value
    [health] = [rest for keyword, rest in instructions if keyword == "HEALTHCHECK"]
    health_command = json.loads(health.split(" CMD ", 1)[1])
    return Image(command, exposed, env, health_command)


@pytest.fixture(scope="module")
def image() -> Image:
    return parse_dockerfile(DOCKERFILE.read_text())


def check_start_command(command: list[str], serve: ServeOptions) -> int:
    """`python run.py serve` with options serve accepts; returns its --port."""
    assert command[:3] == START, command
    arguments = command[3:]
    given: dict[str, str | None] = {}
    while arguments:
        option = arguments.pop(0)
        assert option in serve.takes_value, f"`run.py serve` has no option {option}"
        assert option != "--url", "the URL comes from LOOP_BACKEND_URL, set per platform"
        assert option != "--no-auth", "a deployed backend always authenticates"
        given[option] = arguments.pop(0) if serve.takes_value[option] else None
    assert given.get("--host") == "0.0.0.0", "the backend must listen beyond loopback"
    port = given.get("--port")
    assert port is not None and port.isdigit(), "the port is given explicitly"
    return int(port)


def test_image_start_command_is_serve_with_its_own_options(
    image: Image, serve: ServeOptions
) -> None:
    check_start_command(image.command, serve)


def test_image_port_is_exposed_and_health_checked(image: Image, serve: ServeOptions) -> None:
    port = check_start_command(image.command, serve)
    assert image.exposed == [port]
    assert health_ports(image.health_command) == [port]


def test_image_sets_no_secret_and_only_known_variables(image: Image, serve: ServeOptions) -> None:
    allowed = settings_variables() | serve.envvars | OTHER_VARIABLES
    assert set(image.env) <= allowed, set(image.env) - allowed
    assert not [name for name in image.env if secret_looking(name)]
    assert "HF_HUB_OFFLINE" not in image.env
    assert image.env.get("LOOP_STATE_DIR"), "the state folder is a writable one of its own"


def test_image_is_built_from_the_lock_with_hashes_as_a_non_root_user() -> None:
    instructions = dockerfile_instructions(DOCKERFILE.read_text())
    runs = [rest for keyword, rest in instructions if keyword == "RUN"]
    assert any("--require-hashes" in run and "-r requirements.lock" in run for run in runs)
    assert any("--no-deps" in run for run in runs), "the project itself adds no dependency"
    [base] = [rest for keyword, rest in instructions if keyword == "FROM"]
    assert re.fullmatch(r"python:3\.11\.\d+-slim(-\w+)?", base), base
    users = [rest for keyword, rest in instructions if keyword == "USER"]
    assert users and users[-1] not in ("root", "0")


# --- the recipes ----------------------------------------------------------------------------


def health_ports(command: list[str] | str) -> list[int]:
    text = command if isinstance(command, str) else " ".join(command)
    return [int(port) for port in re.findall(r":(\d+)/health\b", text)]


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [document for document in yaml.safe_load_all(path.read_text()) if document]


def probe_port(probe: dict[str, Any], named: dict[str, int]) -> int:
    http = probe["httpGet"]
    assert http["path"] == "/health", "the only route that answers without auth"
    port = http["port"]
    return named[port] if isinstance(port, str) else int(port)


def kubernetes_env(container: Container, env: list[dict[str, Any]]) -> None:
    for variable in env:
        name = variable["name"]
        if "value" in variable:
            container.literals[name] = str(variable["value"])
        else:
            ref = variable["valueFrom"]["secretKeyRef"]  # a ConfigMap or field ref is no secret
            container.secrets[name] = f"{ref['name']}/{ref['key']}"


def kubernetes_container(recipe: str, spec: dict[str, Any]) -> Container:
    [raw] = spec["containers"]
    container = Container(recipe)
    assert "envFrom" not in raw, "each variable by name, so the test sees what is set"
    kubernetes_env(container, raw.get("env", []))
    named = {port["name"]: port["containerPort"] for port in raw["ports"] if "name" in port}
    container.ports = {port["containerPort"] for port in raw["ports"]}
    container.health_ports = [
        probe_port(raw[probe], named)
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
        if probe in raw
    ]
    if "command" in raw or "args" in raw:
        container.command = [*raw.get("command", []), *raw.get("args", [])]
    return container


def load_kubernetes() -> Container:
    documents = {
        document["kind"]: document
        for document in yaml_documents(DEPLOY / "kubernetes" / "backend.yaml")
    }
    pod = documents["Deployment"]["spec"]["template"]["spec"]
    container = kubernetes_container("kubernetes", pod)
    security = pod["securityContext"]
    assert security["runAsNonRoot"] is True and security["runAsUser"] != 0
    [raw] = pod["containers"]
    assert raw["securityContext"]["readOnlyRootFilesystem"] is True
    assert raw["resources"]["requests"] and raw["resources"]["limits"]
    # A read-only root filesystem needs the state folder on a volume.
    mounts = [mount["mountPath"] for mount in raw["volumeMounts"]]
    state_dir = Path(parse_dockerfile(DOCKERFILE.read_text()).env["LOOP_STATE_DIR"])
    state_dir = Path(container.literals.get("LOOP_STATE_DIR", state_dir))
    assert any(state_dir.is_relative_to(mount) for mount in mounts), mounts
    # The Service sends its traffic to the container's port.
    service_ports = documents["Service"]["spec"]["ports"]
    named = {port["name"]: port["containerPort"] for port in raw["ports"] if "name" in port}
    for port in service_ports:
        target = port["targetPort"]
        container.ports.add(named[target] if isinstance(target, str) else int(target))
    return container


def load_cloud_run() -> Container:
    [service] = yaml_documents(DEPLOY / "cloud-run" / "service.yaml")
    assert service["apiVersion"] == "serving.knative.dev/v1" and service["kind"] == "Service"
    spec = service["spec"]["template"]["spec"]
    for variable in spec["containers"][0].get("env", []):
        if "valueFrom" in variable:  # Secret Manager: secret name, version
            ref = variable["valueFrom"]["secretKeyRef"]
            assert ref["key"] == "latest" or ref["key"].isdigit(), ref
    return kubernetes_container("cloud-run", spec)


def load_ecs() -> Container:
    task = json.loads((DEPLOY / "ecs-fargate" / "task-definition.json").read_text())
    assert task["requiresCompatibilities"] == ["FARGATE"]
    [raw] = task["containerDefinitions"]
    container = Container("ecs-fargate")
    for variable in raw.get("environment", []):
        container.literals[variable["name"]] = variable["value"]
    for variable in raw.get("secrets", []):
        reference = variable["valueFrom"]
        assert re.match(r"arn:aws:(secretsmanager|ssm):", reference), reference
        container.secrets[variable["name"]] = reference
    container.ports = {mapping["containerPort"] for mapping in raw["portMappings"]}
    container.health_ports = health_ports(raw["healthCheck"]["command"])
    if "command" in raw or "entryPoint" in raw:
        container.command = [*raw.get("entryPoint", []), *raw.get("command", [])]
    return container


def load_azure() -> Container:
    [app] = yaml_documents(DEPLOY / "azure-container-apps" / "containerapp.yaml")
    configuration = app["properties"]["configuration"]
    # Key Vault references only: a secret with a `value` would put it in the file.
    key_vault = {}
    for secret in configuration["secrets"]:
        assert "value" not in secret, secret["name"]
        assert secret["keyVaultUrl"].startswith("https://") and secret["identity"]
        key_vault[secret["name"]] = secret["keyVaultUrl"]
    [raw] = app["properties"]["template"]["containers"]
    container = Container("azure-container-apps")
    for variable in raw.get("env", []):
        if "secretRef" in variable:
            container.secrets[variable["name"]] = key_vault[variable["secretRef"]]
        else:
            container.literals[variable["name"]] = str(variable["value"])
    container.ports = {configuration["ingress"]["targetPort"]}
    container.health_ports = [probe_port(probe, {}) for probe in raw["probes"]]
    if "command" in raw or "args" in raw:
        container.command = [*raw.get("command", []), *raw.get("args", [])]
    return container


LOADERS = {
    "kubernetes": load_kubernetes,
    "cloud-run": load_cloud_run,
    "ecs-fargate": load_ecs,
    "azure-container-apps": load_azure,
}


def secret_looking(name: str) -> bool:
    return any(marker in name.upper() for marker in SECRET_MARKERS)


def test_every_recipe_folder_is_checked_and_has_a_readme() -> None:
    assert {path.name for path in DEPLOY.iterdir() if path.is_dir()} == set(LOADERS)
    for name in LOADERS:
        assert (DEPLOY / name / "README.md").is_file(), name


@pytest.fixture(scope="module", params=sorted(LOADERS))
def recipe(request: pytest.FixtureRequest) -> Container:
    return LOADERS[request.param]()


def test_recipe_runs_the_image_command_on_its_port(
    recipe: Container, image: Image, serve: ServeOptions
) -> None:
    port = check_start_command(recipe.command or image.command, serve)
    assert recipe.ports == {port}, recipe.recipe
    assert recipe.health_ports, f"{recipe.recipe}: no health check"
    assert set(recipe.health_ports) == {port}, recipe.recipe


def test_recipe_sets_only_variables_the_backend_reads(
    recipe: Container, serve: ServeOptions
) -> None:
    allowed = settings_variables() | serve.envvars | OTHER_VARIABLES
    unknown = recipe.variables - allowed
    assert not unknown, f"{recipe.recipe}: nothing reads {sorted(unknown)}"


def test_recipe_takes_secrets_from_the_platform_only(recipe: Container) -> None:
    literal_secrets = [name for name in recipe.literals if secret_looking(name)]
    assert not literal_secrets, f"{recipe.recipe}: {literal_secrets} must be secret references"
    for needed in ("LOOP_LABEL_STUDIO_API_KEY", "LOOP_BACKEND_PASSWORD", "ZENML_STORE_API_KEY"):
        assert needed in recipe.secrets, f"{recipe.recipe}: {needed} from the secret store"


def test_recipe_tells_serve_where_label_studio_reaches_it(
    recipe: Container, serve: ServeOptions
) -> None:
    assert "LOOP_BACKEND_URL" in serve.envvars, "serve reads its --url from LOOP_BACKEND_URL"
    url = recipe.literals.get("LOOP_BACKEND_URL", "")
    assert re.match(r"https?://[^/\s]+", url), f"{recipe.recipe}: LOOP_BACKEND_URL"
    assert "LOOP_CLOUD" in serve.envvars and recipe.literals.get("LOOP_CLOUD")
    assert recipe.literals["LOOP_CLOUD"] in {"aws", "gcp", "azure"}, "a real cloud"
    assert "LOOP_LABEL_STUDIO_URL" in recipe.literals


# --- the checks themselves catch what they are for -------------------------------------------


def test_checks_catch_a_broken_start_command(serve: ServeOptions) -> None:
    good = [*START, "--host", "0.0.0.0", "--port", "9090"]
    assert check_start_command(good, serve) == 9090
    for broken in (
        ["python", "run.py", "serv", "--host", "0.0.0.0", "--port", "9090"],
        [*START, "--host", "0.0.0.0", "--prot", "9090"],
        [*START, "--host", "0.0.0.0", "--port", "9090", "--no-auth"],
        [*START, "--port", "9090"],
        [*START, "--host", "0.0.0.0", "--port", "9090", "--url", "http://x:9090"],
    ):
        with pytest.raises(AssertionError):
            check_start_command(broken, serve)


def test_help_parsing_sees_flags_values_and_envvars(serve: ServeOptions) -> None:
    assert serve.takes_value["--port"] and serve.takes_value["--cloud"]
    assert serve.takes_value["--no-auth"] is False
    assert {"LOOP_BACKEND_URL", "LOOP_CLOUD"} <= serve.envvars


def test_checks_catch_a_literal_secret_and_an_unknown_variable(serve: ServeOptions) -> None:
    leaked = Container("leaked", literals={"LOOP_BACKEND_PASSWORD": "hunter2"})
    with pytest.raises(AssertionError):
        test_recipe_takes_secrets_from_the_platform_only(leaked)
    typo = Container("typo", literals={"LOOP_LABELSTUDIO_URL": "https://x"})
    with pytest.raises(AssertionError):
        test_recipe_sets_only_variables_the_backend_reads(typo, serve)
    assert {"LOOP_LABEL_STUDIO_API_KEY", "AWS_ACCESS_KEY_ID"} <= settings_variables()


def test_dockerfile_parsing_sees_a_changed_port() -> None:
    text = DOCKERFILE.read_text().replace("EXPOSE 9090", "EXPOSE 8080")
    assert parse_dockerfile(text).exposed == [8080]
