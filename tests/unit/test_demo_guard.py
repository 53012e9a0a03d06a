"""`run.py up` and `run.py demo` refuse, before starting or deleting anything, unless Label
Studio is the project's own loopback server with the demo token and (demo) ZenML's store is
the project's own."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import SecretStr

import run
from annotation_loop.dev.demo_guard import (
    local_login,
    require_demo_label_studio,
    require_project_zenml_store,
)
from annotation_loop.errors import ConfigurationError
from annotation_loop.settings import PROJECT_ROOT, Settings

REAL_TOKEN = "f" * 40  # a real server's token: must never be printed


@pytest.fixture(autouse=True)
def keep_process_state() -> Iterator[None]:
    """`load_settings` narrows the process's umask and exports settings to the environment;
    the other tests keep theirs."""
    umask = os.umask(0o022)
    os.umask(umask)
    environment = dict(os.environ)
    yield
    os.umask(umask)
    os.environ.clear()
    os.environ.update(environment)


@pytest.mark.parametrize(
    "url",
    [
        "https://label-studio.example.com",
        "http://label-studio.internal:8080",
        "http://10.0.0.5:8093",
        "https://127.0.0.1:8093",
    ],
)
def test_a_label_studio_that_is_not_the_local_demo_server_is_refused(url: str) -> None:
    with pytest.raises(ConfigurationError, match="LOOP_LABEL_STUDIO_URL") as error:
        require_demo_label_studio(Settings(label_studio_url=url), "demo")
    assert "\n" not in str(error.value)


def test_the_local_server_with_another_token_is_refused() -> None:
    settings = Settings(label_studio_api_key=SecretStr(REAL_TOKEN))
    with pytest.raises(ConfigurationError, match="LOOP_LABEL_STUDIO_API_KEY") as error:
        require_demo_label_studio(settings, "up")
    assert REAL_TOKEN not in str(error.value)


def test_the_demo_server_passes() -> None:
    require_demo_label_studio(Settings(), "demo")
    require_demo_label_studio(Settings(label_studio_url="http://localhost:18093"), "up")


@pytest.mark.parametrize("command", [["up"], ["demo"], ["demo", "--cloud", "aws"]])
def test_up_and_demo_stop_before_starting_or_deleting_anything(
    command: list[str], tmp_path: Path
) -> None:
    """A `.env` pointing at a real Label Studio: today's demo would start its services, find
    that server healthy, and delete its project."""
    state = tmp_path / "state"
    result = CliRunner().invoke(
        run.cli,
        command,
        env={
            "LOOP_STATE_DIR": str(state),
            "LOOP_LABEL_STUDIO_URL": "http://label-studio.internal:8080",
            "LOOP_LABEL_STUDIO_API_KEY": REAL_TOKEN,
        },
    )
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "LOOP_LABEL_STUDIO_URL" in lines[0], result.output
    assert REAL_TOKEN not in result.output
    assert not (state / "run").exists() and not (state / "logs").exists(), "nothing started"


def test_the_demo_refuses_a_zenml_store_that_is_not_the_projects(tmp_path: Path) -> None:
    # The tests' ZenML lives in a folder of their own, as a user's ZENML_CONFIG_PATH would.
    with pytest.raises(ConfigurationError, match="ZENML_CONFIG_PATH") as error:
        require_project_zenml_store(Settings(state_dir=tmp_path / "state"))
    assert "\n" not in str(error.value)


def zenml_check(state: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """In a fresh process (ZenML reads its configuration once): load the settings as run.py
    does, check the store, open it."""
    script = (
        "import run\n"
        "from annotation_loop.dev.demo_guard import require_project_zenml_store\n"
        "settings = run.load_settings()\n"
        "require_project_zenml_store(settings)\n"
        "from zenml.client import Client\n"
        "Client().zen_store\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_STORE")}
    environment.update(LOOP_STATE_DIR=str(state), **env)
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=PROJECT_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_projects_own_zenml_store_passes_and_is_owner_only(tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = zenml_check(state, ZENML_CONFIG_PATH=str(state / "zenml"))
    assert done.returncode == 0, done.stderr
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    database = next((state / "zenml").rglob("zenml.db"))  # holds ZenML's secrets
    assert stat.S_IMODE(database.stat().st_mode) == 0o600


def test_a_remote_zenml_store_is_refused_without_showing_its_password(tmp_path: Path) -> None:
    state = tmp_path / "state"
    done = zenml_check(
        state,
        ZENML_CONFIG_PATH=str(state / "zenml"),
        ZENML_STORE_URL="mysql://loop:hunter2@zenml-db.internal/zenml",
    )
    assert done.returncode != 0
    assert "ConfigurationError" in done.stderr and "zenml-db.internal" in done.stderr
    assert "hunter2" not in done.stderr + done.stdout


def test_only_the_demo_password_is_ever_printed() -> None:
    assert local_login(Settings()) == "admin@example.com / annotation-loop"
    own = Settings(label_studio_password=SecretStr("s3cret-of-mine"))
    assert "s3cret-of-mine" not in local_login(own)
    assert "LOOP_LABEL_STUDIO_PASSWORD" in local_login(own)
