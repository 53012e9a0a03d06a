"""`run.py up` and `run.py demo` refuse, before starting or deleting anything, unless Label
Studio is the project's own loopback server with the demo token and (demo) ZenML's store is
the project's own."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pydantic import SecretStr

from annotation_loop.dev.demo_guard import (
    local_login,
    require_demo_label_studio,
    require_project_zenml_store,
    zenml_login,
)
from annotation_loop.dev.services import ZenmlServer
from annotation_loop.errors import ConfigurationError
from annotation_loop.settings import PROJECT_ROOT, Settings

REAL_TOKEN = "f" * 40  # a real server's token: must never be printed
ZENML_PORT = 1  # the project's ZenML server, which no test here starts: nothing answers there


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
    command: list[str], tmp_path: Path, run_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    """A `.env` pointing at a real Label Studio: today's demo would start its services, find
    that server healthy, and delete its project."""
    state = tmp_path / "state"
    result = run_cli(
        *command,
        env={
            "LOOP_STATE_DIR": str(state),
            "LOOP_LABEL_STUDIO_URL": "http://label-studio.internal:8080",
            "LOOP_LABEL_STUDIO_API_KEY": REAL_TOKEN,
        },
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "LOOP_LABEL_STUDIO_URL" in lines[0], result.stderr
    assert REAL_TOKEN not in result.stdout + result.stderr
    assert not (state / "run").exists() and not (state / "logs").exists(), "nothing started"


def test_the_demo_refuses_a_zenml_store_that_is_not_the_projects(tmp_path: Path) -> None:
    # The tests' ZenML lives in a folder of their own, as a user's ZENML_CONFIG_PATH would.
    with pytest.raises(ConfigurationError, match="ZENML_CONFIG_PATH") as error:
        require_project_zenml_store(Settings(state_dir=tmp_path / "state"))
    assert "\n" not in str(error.value)


OPEN_THE_STORE = "from zenml.client import Client\nClient().zen_store\n"


def zenml_check(
    state: Path,
    check: str = "require_project_zenml_store(settings)\n" + OPEN_THE_STORE,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """In a fresh process (ZenML reads its configuration once): load the settings as run.py
    does, then `check` (by default: check the store, open it). A LoopError it raises is
    printed as `run.py` prints it, one line, and the process exits 1."""
    script = (
        "import sys\n"
        "from annotation_loop.app import load_settings\n"
        "from annotation_loop.dev.demo_guard import *\n"
        "from annotation_loop.dev.services import ZenmlServer\n"
        "from annotation_loop.errors import LoopError\n"
        "settings = load_settings()\n"
        "try:\n" + textwrap.indent(check, "    ") + "except LoopError as error:\n"
        "    sys.exit(f'{type(error).__name__}: {error}')\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_STORE")}
    environment.update(LOOP_STATE_DIR=str(state), LOOP_ZENML_SERVER_PORT=str(ZENML_PORT), **env)
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


def test_the_projects_zenml_server_is_the_projects_store_and_another_server_is_not(
    tmp_path: Path,
) -> None:
    """After `run.py up`, ZenML's store is the project's ZenML server (checked without
    connecting: it may be about to start again); a ZenML server elsewhere is refused."""
    state = tmp_path / "state"
    check = "require_project_zenml_store(settings)\n"
    ours = zenml_check(state, check, ZENML_STORE_URL=f"http://127.0.0.1:{ZENML_PORT}")
    assert ours.returncode == 0, ours.stderr

    for url in (f"http://127.0.0.1:{ZENML_PORT + 1}", "https://zenml.example.com"):
        theirs = zenml_check(state, check, ZENML_STORE_URL=url)
        assert theirs.returncode != 0
        assert theirs.stderr.startswith("ConfigurationError: ") and url in theirs.stderr


def test_commands_refuse_a_project_zenml_server_that_is_not_running(tmp_path: Path) -> None:
    """Else ZenML retries it for 30 s, then fails with a traceback."""
    state = tmp_path / "state"
    check = "require_running_zenml_server(settings)\n"
    stopped = zenml_check(state, check, ZENML_STORE_URL=f"http://127.0.0.1:{ZENML_PORT}")
    assert stopped.returncode != 0
    message = stopped.stderr.strip()
    assert message.startswith("ServiceError: ") and "\n" not in message
    assert "ServiceError" in message and "`run.py up`" in message and "`run.py down`" in message

    local = zenml_check(state, check + OPEN_THE_STORE, ZENML_CONFIG_PATH=str(state / "zenml"))
    assert local.returncode == 0, local.stderr


def test_up_leaves_a_zenml_that_uses_another_store_alone(tmp_path: Path) -> None:
    """The server would serve ZenML's local store: switching a ZenML that uses another one
    would hide its runs. Nothing is started."""
    state = tmp_path / "state"
    done = zenml_check(
        state,
        "ZenmlServer(settings).start()\n",
        ZENML_CONFIG_PATH=str(state / "zenml"),
        ZENML_STORE_URL="mysql://loop:hunter2@zenml-db.internal/zenml",
    )
    assert done.returncode != 0
    message = done.stderr.strip()
    assert message.startswith("ConfigurationError: ") and "\n" not in message
    assert "zenml-db.internal" in message
    assert "hunter2" not in done.stderr + done.stdout
    assert not (state / "run").exists() and not (state / "logs").exists(), "nothing started"


def test_the_zenml_dashboard_login_names_where_its_password_is_never_the_password(
    tmp_path: Path,
) -> None:
    settings = Settings(state_dir=tmp_path / "state")
    server = ZenmlServer(settings)
    password = server.password()
    assert server.password() == password, "made once"
    assert stat.S_IMODE(server.password_file.stat().st_mode) == 0o600
    login = zenml_login(settings)
    assert password not in login
    assert login == f"default / the password in {server.password_file}"
