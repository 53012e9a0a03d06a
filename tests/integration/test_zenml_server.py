"""The project's ZenML server against the real thing: it listens on 127.0.0.1 only, asks
for a password (a store a client opened directly has an empty one), switches ZenML to itself
so pipelines, leases and plots go through it, and hands ZenML back to its SQLite store when
stopped.

ZenML reads its configuration once per process, and starting the server switches that
configuration: so each step that plays a `run.py` command runs in a process of its own, on a
ZenML folder of the test's own (the session's ZenML is never touched).
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from annotation_loop.dev.services import ZenmlServer, port_in_use
from annotation_loop.processes import alive
from annotation_loop.settings import Settings

pytestmark = pytest.mark.integration

TEST_ZENML_PORT = 18238
API = "/api/v1"
# What each process runs first: the settings and the owner-only umask, as `run.py` has them.
PRELUDE = """
import json, os
os.umask(0o077)
from annotation_loop.settings import Settings
from annotation_loop.dev.services import ZenmlServer, start_services, stop_services
settings = Settings()
server = ZenmlServer(settings)
"""


def free_port() -> int:
    base = TEST_ZENML_PORT + int(os.environ.get("LOOP_TEST_PORT_OFFSET", "0"))
    for port in range(base, base + 2000, 20):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port from {base} on")


@dataclass(frozen=True)
class Project:
    """A state folder with its own ZenML folder and server port."""

    settings: Settings
    port: int

    def run(self, script: str) -> subprocess.CompletedProcess[str]:
        """`script` in a fresh process that uses this project's ZenML, as `run.py` would;
        what it prints last as JSON is its result."""
        environment = {k: v for k, v in os.environ.items() if not k.startswith("ZENML_STORE")}
        environment.update(
            LOOP_STATE_DIR=str(self.settings.state_dir),
            LOOP_ZENML_SERVER_PORT=str(self.port),
            ZENML_CONFIG_PATH=str(self.settings.zenml_config_path),
        )
        # A file, not `python -c`: ZenML finds a pipeline's source root from its main module.
        # Not in the project's root: its ZenML repository (.zen) is not the test's.
        program = self.settings.state_dir.parent / "command.py"
        program.write_text(PRELUDE + script)
        return subprocess.run(
            [sys.executable, str(program)],
            cwd=program.parent,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def result(self, script: str) -> dict:
        done = self.run(script)
        assert done.returncode == 0, done.stderr[-3000:]
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))

    @property
    def server(self) -> ZenmlServer:
        return ZenmlServer(self.settings)


@contextlib.contextmanager
def project_in(folder: Path) -> Iterator[Project]:
    """A project whose server is stopped at the end, whatever the test left running."""
    port = free_port()
    project = Project(Settings(state_dir=folder / "state", zenml_server_port=port), port)
    try:
        yield project
    finally:
        project.server.stop(grace=5)


@pytest.fixture(scope="module")
def started(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """A server started (`run.py up`) on a store a client had opened directly before, so
    ZenML's default user had an empty password."""
    folder = tmp_path_factory.mktemp("zenml-server")
    with project_in(folder) as project:
        started = project.result(
            "from zenml.client import Client\n"
            "Client().zen_store\n"  # the SQLite store, made by the client
            "status = start_services(settings, ['zenml'])[0]\n"
            "print(json.dumps({'healthy': status.healthy}))\n"
        )
        assert started["healthy"]
        yield project


def gone(pid: int) -> bool:
    """Whether `pid` no longer runs (stopped by another process, it may linger as a zombie
    until whoever adopted it reaps it)."""
    try:
        return not alive(psutil.Process(pid))
    except psutil.NoSuchProcess:
        return True


def login(url: str, password: str) -> httpx.Response:
    return httpx.post(
        f"{url}{API}/login",
        data={"username": ZenmlServer.username, "password": password},
        trust_env=False,
        timeout=30,
    )


def test_it_listens_on_loopback_only_and_answers(started: Project) -> None:
    status = started.server.status()
    assert status.running and status.healthy and status.pid is not None
    assert status.url == f"http://127.0.0.1:{started.port}"
    process = psutil.Process(status.pid)
    listening = [
        connection.laddr
        for member in (process, *process.children(recursive=True))
        for connection in member.net_connections(kind="inet")
        if connection.status == psutil.CONN_LISTEN
    ]
    assert listening and all(address.ip == "127.0.0.1" for address in listening), listening
    assert httpx.get(f"{status.url}/health", trust_env=False).status_code == 200


def test_it_refuses_whoever_has_not_logged_in_with_its_password(started: Project) -> None:
    url = started.server.url
    for path in ("/current-user", "/secrets", "/runs", "/users"):
        assert httpx.get(f"{url}{API}{path}", trust_env=False).status_code == 401, path
    # The empty password the client gave the default user, and a wrong one.
    assert login(url, "").status_code == 401
    assert login(url, "not-the-password").status_code == 401

    answer = login(url, started.server.password())
    assert answer.status_code == 200
    me = httpx.get(
        f"{url}{API}/current-user",
        headers={"Authorization": f"Bearer {answer.json()['access_token']}"},
        trust_env=False,
    )
    assert me.status_code == 200 and me.json()["name"] == ZenmlServer.username


def test_its_password_stays_off_command_lines_and_out_of_logs_and_other_users_reach(
    started: Project,
) -> None:
    password = started.server.password()
    assert len(password) >= 32
    for process in psutil.process_iter(["cmdline"]):
        assert password not in " ".join(process.info["cmdline"] or []), process
    for written in (started.server.log_file, started.server.pid_file):
        assert password not in written.read_text(), written
    state = started.settings.state_dir
    readable = [
        path
        for path in [state, *state.rglob("*")]
        if not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) & 0o077
    ]
    assert not readable, f"group/world bits on {readable[:5]}"
    assert started.server.password_file.exists()


RUN_A_PIPELINE = """
from PIL import Image
from zenml import pipeline, step
from zenml.client import Client
from annotation_loop.dev.demo_guard import require_project_zenml_store, require_running_zenml_server
from annotation_loop.zenml_integration.leases import training_lease

@step(enable_cache=False)
def plot() -> Image.Image:
    return Image.new("RGB", (8, 8), (200, 10, 10))

@pipeline(enable_cache=False)
def dashboard_check() -> None:
    plot()

require_project_zenml_store(settings)
require_running_zenml_server(settings)
first, second = training_lease("m", "first run"), training_lease("m", "second run")
with first.held(wait_s=0):
    holder = second.try_acquire()
run = Client().get_pipeline_run(dashboard_check().id)
print(json.dumps({
    "store": Client().zen_store.config.url,
    "run": str(run.id),
    "artifact": str(run.steps["plot"].outputs["output"][0].id),
    "lease_seen_held_by": holder.purpose if holder else None,
    "lease_free_after": second.try_acquire() is None,
}))
"""


def test_pipelines_and_leases_go_through_it_and_its_dashboard_shows_their_plots(
    started: Project,
) -> None:
    ran = started.result(RUN_A_PIPELINE)
    assert ran["store"] == started.server.url
    assert ran["lease_seen_held_by"] == "first run" and ran["lease_free_after"]

    token = login(started.server.url, started.server.password()).json()["access_token"]
    with httpx.Client(
        base_url=f"{started.server.url}{API}",
        headers={"Authorization": f"Bearer {token}"},
        trust_env=False,
        timeout=30,
    ) as api:
        assert api.get(f"/runs/{ran['run']}").json()["body"]["status"] == "completed"
        shown = api.get(f"/artifact_versions/{ran['artifact']}/visualize", params={"index": 0})
    assert shown.status_code == 200 and shown.json()["type"] == "image"


def test_start_reuses_it_and_stop_hands_zenml_back_to_its_local_store(tmp_path: Path) -> None:
    with project_in(tmp_path) as project:
        pid = project.result(
            "status = start_services(settings, ['zenml'])[0]\n"
            "again = start_services(settings, ['zenml'])[0]\n"
            "print(json.dumps({'pid': status.pid, 'again': again.pid}))\n"
        )
        assert pid["again"] == pid["pid"], "reused"

        stopped = project.result(
            "stop_services(settings)\n"
            "from zenml.client import Client\n"
            "from annotation_loop.dev.demo_guard import require_project_zenml_store\n"
            "require_project_zenml_store(settings)\n"
            "print(json.dumps({'store': Client().zen_store.type.value,"
            " 'running': server.status().running}))\n"
        )
        assert stopped == {"store": "sql", "running": False}
        assert gone(pid["pid"])
        assert not port_in_use(project.port)
        credentials = project.settings.zenml_config_path / "credentials.yaml"
        assert project.server.url not in credentials.read_text(), "the login is forgotten"
