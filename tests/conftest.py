"""Test session setup: ZenML isolated from the user's own config, and the real servers.

Integration tests ask for `services` (Label Studio and the S3, GCS and Azure stand-ins, started
once for the session, on ports away from the demo's); nothing is started when no collected test
asks for it.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

# ZenML reads these when it is imported, so they are set before any test module imports it.
_ZENML_CONFIG = tempfile.mkdtemp(prefix="loop-tests-zenml-")
os.environ.update(
    ZENML_ANALYTICS_OPT_IN="false",  # else ZenML makes DNS lookups
    ZENML_CONFIG_PATH=_ZENML_CONFIG,  # never the user's ~/.config/zenml
    ZENML_LOGGING_VERBOSITY="WARN",
    HF_HUB_OFFLINE="1",
    GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT="false",  # gcsfs >= 2026 fails on fake-gcs-server without
)

import pytest  # noqa: E402

from annotation_loop.dev.services import SeaweedS3Server, start_services, stop_services  # noqa: E402
from annotation_loop.settings import GOOGLE_OFFLINE_ENV, PROJECT_ROOT, Settings  # noqa: E402

# google.auth reads these when it is imported (the settings module does not import it), so no
# test ever probes the cloud metadata server. STORAGE_EMULATOR_HOST is the tests' own business.
os.environ.update(GOOGLE_OFFLINE_ENV)

# Away from the demo's ports (8093; 8333-8341 and 18341; 4443; 10000), so `make test` and
# `make demo` can run side by side.
TEST_LABEL_STUDIO_PORT = 18093
TEST_S3_PORT = 18433
TEST_GCS_PORT = 14443
TEST_AZURE_PORT = 20000
PORT_SCAN_STEP = 20


def unused(port: int) -> bool:
    """Whether nothing holds `port`: no listener, no bound socket, no closed connection in
    TIME_WAIT (which the servers would not mind, but a test's squatting socket does)."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_base(start: int, ports_from: Callable[[int], Sequence[int]] = lambda base: [base]) -> int:
    """The first `start + k * PORT_SCAN_STEP` whose ports (`ports_from(base)`) are all unused."""
    for base in range(start, start + 100 * PORT_SCAN_STEP, PORT_SCAN_STEP):
        if all(unused(port) for port in ports_from(base)):
            return base
    raise RuntimeError(f"no free ports found from {start} on")


def make_settings(state_dir: Path, port_offset: int = 0) -> Settings:
    """Settings of a private set of servers: its own state dir, and free ports from the test
    ports plus `port_offset`."""
    # Test sessions side by side each set their own LOOP_TEST_PORT_OFFSET: a server that
    # binds late could otherwise take a port another session found free.
    port_offset += int(os.environ.get("LOOP_TEST_PORT_OFFSET", "0"))
    label_studio_port = free_base(TEST_LABEL_STUDIO_PORT + port_offset)
    return Settings(
        state_dir=state_dir,
        label_studio_url=f"http://127.0.0.1:{label_studio_port}",
        local_s3_port=free_base(TEST_S3_PORT + port_offset, SeaweedS3Server.ports_from),
        local_gcs_port=free_base(TEST_GCS_PORT + port_offset),
        local_azure_port=free_base(TEST_AZURE_PORT + port_offset),
    )


def pytest_unconfigure(config: pytest.Config) -> None:
    shutil.rmtree(_ZENML_CONFIG, ignore_errors=True)


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """Label Studio and the three stand-ins, running for the whole session, and their Settings."""
    settings = make_settings(tmp_path_factory.mktemp("loop-state"))
    try:
        start_services(settings)
        yield settings
    finally:
        stop_services(settings)


@pytest.fixture
def fresh_settings(tmp_path: Path) -> Iterator[Settings]:
    """Settings for servers of the test's own (state dir, free ports): not started, but
    stopped after the test whatever it left running."""
    settings = make_settings(tmp_path / "state", port_offset=1000)
    yield settings
    stop_services(settings)


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> str:
    """A name no other test uses, valid as an S3 or GCS bucket, an Azure container and a Label
    Studio project title."""
    stem = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower())[:40].strip("-")
    return f"{stem}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def run_cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    """`run_cli("local", "--train", env={...})`: `python run.py ...` in a process of its own,
    as a user runs it (the CLI is not imported: it is a thin layer over annotation_loop.app)."""

    def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "run.py", *args],
            cwd=PROJECT_ROOT,
            env={**os.environ, **(env or {})},
            capture_output=True,
            text=True,
            timeout=600,
        )

    return run
