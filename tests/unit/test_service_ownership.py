"""A local service counts as started only when the process it spawned answers: another
program answering on its port (an old server, or one that took the port in a race) never
does. A tiny HTTP server stands in for the real binaries."""

from __future__ import annotations

import os
import socket
import sys
import threading
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psutil
import pytest

from annotation_loop.dev.services import LocalService, ZenmlServer, _get, _inherited_environment
from annotation_loop.errors import ServiceError
from annotation_loop.settings import Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b'{"status": "UP"}')

    def log_message(self, *args: object) -> None:
        pass


class Foreign:
    """Another program's server answering /health on `port`, in this (the test's) process."""

    def __init__(self, port: int) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", port), Healthy)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TinyServer(LocalService):
    """`python -m http.server` serving a `health` file, so GET /health answers 200."""

    name = "tiny"
    title = "Tiny server"
    port_setting = "TINY_PORT"

    def __init__(self, settings: Settings, port: int, serve: bool = True) -> None:
        super().__init__(settings)
        self._port = port
        self.serve = serve  # False: the process lives but never listens

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    @property
    def data_dir(self) -> Path:
        return self.settings.state_dir / "tiny"

    def ports(self) -> Sequence[int]:
        return [self._port]

    def command(self) -> list[str]:
        (self.data_dir / "health").parent.mkdir(parents=True, exist_ok=True)
        (self.data_dir / "health").write_text("UP")
        if not self.serve:
            return [sys.executable, "-c", "import time; time.sleep(120)"]
        return [sys.executable, "-m", "http.server", str(self._port), "--bind", "127.0.0.1"]

    def is_healthy(self) -> bool:
        response = _get(f"{self.url}/health")
        return response is not None and response.status_code == 200


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(state_dir=tmp_path / "state")


@pytest.fixture
def port() -> Iterator[int]:
    yield free_port()


def test_our_own_server_counts_as_started(settings: Settings, port: int) -> None:
    service = TinyServer(settings, port)
    try:
        started = service.start(timeout=30)
        assert started.running and started.healthy
        assert service.start(timeout=30).pid == started.pid, "reused"
    finally:
        service.stop(grace=2)


def test_a_server_that_takes_the_port_after_the_check_is_not_ours(
    settings: Settings, port: int
) -> None:
    """The race: the port is free when checked, another program binds it before ours does
    (Label Studio would then quietly listen elsewhere), and it answers the health check."""
    foreign: list[Foreign] = []

    class Raced(TinyServer):
        def _spawn(self) -> psutil.Process:
            process = super()._spawn()
            foreign.append(Foreign(port))
            return process

    service = Raced(settings, port, serve=False)
    try:
        with pytest.raises(ServiceError) as error:
            service.start(timeout=30)
        message = str(error.value)
        assert "\n" not in message
        assert f"port {port}" in message and "another program" in message
        assert not service.pid_file.exists(), "our half-started process was stopped"
        assert not service.status().healthy
    finally:
        for server in foreign:
            server.close()
        service.stop(grace=2)


def test_a_live_process_of_ours_that_does_not_listen_is_not_reused(
    settings: Settings, port: int
) -> None:
    """The reuse path: the pid file names a live process of ours, but what answers on the
    port is another program's server."""
    service = TinyServer(settings, port, serve=False)
    ours = service._spawn()  # alive, recorded in the pid file, never listening
    foreign = Foreign(port)
    try:
        assert service.status().running
        assert not service.status().healthy, "the foreign answer counts for nothing"
        with pytest.raises(ServiceError, match=f"port {port} on 127.0.0.1 is answered by another"):
            service.start(timeout=30)
        assert not ours.is_running() or ours.status() == psutil.STATUS_ZOMBIE
    finally:
        foreign.close()
        service.stop(grace=2)


def test_a_shells_zenml_store_and_cloud_keys_never_reach_a_service(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A shell's ZENML_STORE_URL would make the project's ZenML server serve another store
    (and hand its password to every service)."""
    shell = {
        "ZENML_STORE_URL": "mysql://loop:hunter2@zenml-db.internal/zenml",
        "ZENML_STORE_PASSWORD": "hunter2",
        "ZENML_SERVER_AUTH_SCHEME": "NO_AUTH",
        "AWS_SECRET_ACCESS_KEY": "aws-secret",
        "LOOP_LABEL_STUDIO_API_KEY": "token",
    }
    for name, value in shell.items():
        monkeypatch.setenv(name, value)
    inherited = _inherited_environment()
    assert not set(shell) & set(inherited)
    assert inherited["PATH"] == os.environ["PATH"]


def test_the_zenml_server_asks_for_a_password_that_stays_off_its_command_line(
    settings: Settings, port: int
) -> None:
    from zenml.config.global_config import GlobalConfiguration

    server = ZenmlServer(settings.model_copy(update={"zenml_server_port": port}))
    environment = server.environment()
    assert server.url == f"http://127.0.0.1:{port}"
    assert environment["ZENML_SERVER_AUTH_SCHEME"] == "OAUTH2_PASSWORD_BEARER"
    assert environment["ZENML_DEFAULT_USER_PASSWORD"] == server.password()
    assert server.password() not in " ".join(server.command())
    assert "--port" in server.command() and str(port) in server.command()
    # It serves the database of this process's ZenML, as `zenml login --local` does.
    assert environment["ZENML_LOCAL_STORES_PATH"] == GlobalConfiguration().local_stores_path
    # Its own ZenML configuration is the project's, not the user's ~/.config/zenml.
    assert Path(environment["ZENML_CONFIG_PATH"]).is_relative_to(settings.zenml_config_path)
