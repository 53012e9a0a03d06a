"""The local services against the real binaries: reuse, health, credentials, stop."""

import base64
import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import httpx
import psutil
import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobServiceClient
from botocore.config import Config
from botocore.exceptions import ClientError
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage as gcs
from pydantic import SecretStr

from annotation_loop.dev.demo_guard import require_own_label_studio_process
from annotation_loop.dev.services import (
    SERVICE_NAMES,
    AzuriteServer,
    FakeGcsServer,
    LabelStudioServer,
    SeaweedS3Server,
    port_in_use,
    services_status,
    start_services,
    stop_services,
)
from annotation_loop.errors import ServiceError
from annotation_loop.settings import AZURITE_ACCOUNT_NAME, Settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

pytestmark = pytest.mark.integration


def s3_client(settings: Settings, access_key: str, secret_key: str) -> "S3Client":
    return boto3.client(
        "s3",
        endpoint_url=settings.local_s3_endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        region_name="us-east-1",
        config=Config(retries={"max_attempts": 1}),
    )


def gcs_client(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> gcs.Client:
    # The client reads the emulator's address from the environment when it is made.
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", settings.local_gcs_endpoint_url)
    return gcs.Client(project="test", credentials=AnonymousCredentials())


def azure_client(settings: Settings) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(settings.local_azure_connection_string)


def test_start_reuses_the_running_services(services: Settings) -> None:
    stand_ins = (SeaweedS3Server, FakeGcsServer, AzuriteServer)
    for service in (LabelStudioServer(services), *(kind(services) for kind in stand_ins)):
        before = service.status()
        started = time.monotonic()
        after = service.start()
        assert time.monotonic() - started < 5, f"{service.name} was not reused"
        assert before.running and before.pid is not None
        assert after.pid == before.pid
        assert after.healthy


def test_status_reports_healthy_services(services: Settings) -> None:
    # `run.py status` lists the ZenML server too, which the session does not start.
    everything = services_status(services)
    assert [status.name for status in everything] == [*SERVICE_NAMES, "zenml"]
    assert not everything[-1].running and not everything[-1].healthy
    statuses = {status.name: status for status in everything[:-1]}
    assert tuple(statuses) == SERVICE_NAMES == ("label_studio", "s3", "gcs", "azure")
    assert statuses["label_studio"].url == services.label_studio_url
    assert statuses["s3"].url == services.local_s3_endpoint_url
    assert statuses["gcs"].url == services.local_gcs_endpoint_url
    assert statuses["azure"].url == services.local_azure_blob_endpoint
    for status in statuses.values():
        assert status.running and status.healthy
        assert status.pid is not None and psutil.pid_exists(status.pid)
        assert status.log_file.stat().st_size > 0


def test_label_studio_accepts_the_legacy_token_only(services: Settings) -> None:
    url = f"{services.label_studio_url}/api/projects"
    token = services.label_studio_api_key.get_secret_value()
    good = httpx.get(url, headers={"Authorization": f"Token {token}"}, trust_env=False)
    bad = httpx.get(url, headers={"Authorization": f"Token {'0' * 40}"}, trust_env=False)
    assert good.status_code == 200
    assert bad.status_code == 401


def test_s3_stand_in_checks_the_keys(services: Settings, unique_name: str) -> None:
    right = s3_client(services, SeaweedS3Server.access_key, SeaweedS3Server.secret_key)
    right.create_bucket(Bucket=unique_name)
    right.put_object(Bucket=unique_name, Key="a.txt", Body=b"hello")
    assert right.get_object(Bucket=unique_name, Key="a.txt")["Body"].read() == b"hello"

    wrong = s3_client(services, SeaweedS3Server.access_key, "not-the-secret")
    with pytest.raises(ClientError) as refused:
        wrong.get_object(Bucket=unique_name, Key="a.txt")
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_fake_gcs_round_trips_objects(
    services: Settings, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = gcs_client(services, monkeypatch)
    client.create_bucket(unique_name)
    small, large = b"hello", os.urandom(9 * 2**20)  # over 8 MiB: a resumable upload session
    client.bucket(unique_name).blob("a/small.txt").upload_from_string(small)
    client.bucket(unique_name).blob("a/large.bin").upload_from_string(large)

    bucket = client.bucket(unique_name)
    assert bucket.blob("a/small.txt").download_as_bytes() == small
    assert bucket.blob("a/large.bin").download_as_bytes() == large
    assert sorted(blob.name for blob in client.list_blobs(unique_name)) == [
        "a/large.bin",
        "a/small.txt",
    ]


def test_azurite_round_trips_blobs_and_checks_the_key(services: Settings, unique_name: str) -> None:
    container = azure_client(services).create_container(unique_name)
    container.upload_blob("a/b.txt", b"hello")
    assert container.download_blob("a/b.txt").readall() == b"hello"

    wrong_key = base64.b64encode(b"not the key").decode()
    wrong = BlobServiceClient(
        services.local_azure_blob_endpoint,
        credential={"account_name": AZURITE_ACCOUNT_NAME, "account_key": wrong_key},
    )
    with pytest.raises(HttpResponseError) as refused:
        wrong.get_blob_client(unique_name, "a/b.txt").download_blob().readall()
    assert refused.value.status_code == 403


def test_label_studio_serves_objects_from_fake_gcs(
    services: Settings, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = gcs_client(services, monkeypatch)
    client.create_bucket(unique_name).blob("batch_1/a.txt").upload_from_string(b"hello")
    token = services.label_studio_api_key.get_secret_value()
    with httpx.Client(
        base_url=services.label_studio_url,
        headers={"Authorization": f"Token {token}"},
        trust_env=False,
        timeout=30,
    ) as api:
        config = '<View><Text name="text" value="$text"/></View>'
        project = api.post("/api/projects", json={"title": unique_name, "label_config": config})
        # No presigning: that needs a service account's private key, which the emulator lacks.
        storage = api.post(
            "/api/storages/gcs",
            json={
                "project": project.json()["id"],
                "bucket": unique_name,
                "presign": False,
                "use_blob_urls": True,
                "recursive_scan": True,
            },
        )
        synced = api.post(f"/api/storages/gcs/{storage.json()['id']}/sync")
        assert synced.json()["last_sync_count"] == 1, synced.text
        tasks = api.get("/api/tasks", params={"project": project.json()["id"]}).json()["tasks"]
        fetched = api.get(tasks[0]["data"]["text"])  # Label Studio's own proxy
    assert fetched.status_code == 200 and fetched.content == b"hello"


def test_missing_label_studio_binary_says_how_to_install(fresh_settings: Settings) -> None:
    settings = fresh_settings.model_copy(
        update={"label_studio_venv": fresh_settings.state_dir / "no-venv"}
    )
    with pytest.raises(ServiceError) as error:
        LabelStudioServer(settings).start()
    message = str(error.value)
    assert "\n" not in message
    assert "make install" in message
    assert LabelStudioServer(settings).status().running is False


def test_missing_azurite_says_how_to_install(
    fresh_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(AzuriteServer, "binary", fresh_settings.state_dir / "no-azurite")
    with pytest.raises(ServiceError) as error:
        AzuriteServer(fresh_settings).start()
    message = str(error.value)
    assert "\n" not in message
    assert "make install" in message
    assert AzuriteServer(fresh_settings).status().running is False


def test_start_refuses_ports_another_program_uses(services: Settings, tmp_path: Path) -> None:
    intruder = SeaweedS3Server(services.model_copy(update={"state_dir": tmp_path}))
    with pytest.raises(ServiceError, match=f"port {services.local_s3_port} "):
        intruder.start()
    assert services_status(services, ["s3"])[0].healthy


def test_start_timeout_stops_the_half_started_process(fresh_settings: Settings) -> None:
    service = LabelStudioServer(fresh_settings)
    with pytest.raises(ServiceError) as error:
        service.start(timeout=1)  # Label Studio needs far longer than that to boot
    message = str(error.value)
    assert fresh_settings.label_studio_url in message
    assert str(service.log_file) in message
    assert not service.pid_file.exists()
    assert not port_in_use(fresh_settings.label_studio_port)
    assert not any(
        str(service.data_dir) in (process.info["cmdline"] or [])
        for process in psutil.process_iter(["cmdline"])
    )


def test_early_exit_names_the_log_and_its_last_line(fresh_settings: Settings) -> None:
    service = SeaweedS3Server(fresh_settings)
    master_port = service.ports()[SeaweedS3Server.PORT_FLAGS.index("master.port")]
    with socket.socket() as squatter:
        # Bound but not listening: invisible to the pre-start port check, fatal to `weed`.
        squatter.bind(("127.0.0.1", master_port))
        with pytest.raises(ServiceError) as error:
            service.start(timeout=60)
    message = str(error.value)
    assert "exited while starting" in message
    assert str(master_port) in message  # weed's own last words, from the log
    assert str(service.log_file) in message
    assert not service.pid_file.exists()


def test_stop_takes_the_service_down(fresh_settings: Settings) -> None:
    service = SeaweedS3Server(fresh_settings)
    started = service.start(timeout=60)
    assert started.running and started.healthy and started.pid is not None

    service.stop()

    stopped = service.status()
    assert not stopped.running and not stopped.healthy and stopped.pid is None
    assert not psutil.pid_exists(started.pid)
    assert not service.pid_file.exists()
    assert not any(port_in_use(port) for port in service.ports())
    service.stop()  # stopping a stopped service is a no-op


def test_stand_ins_keep_their_data_across_a_restart(
    fresh_settings: Settings, unique_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ("gcs", "azure")
    start_services(fresh_settings, names, timeout=60)
    bucket = gcs_client(fresh_settings, monkeypatch).create_bucket(unique_name)
    bucket.blob("a.txt").upload_from_string(b"on gcs")
    azure_client(fresh_settings).create_container(unique_name).upload_blob("a.txt", b"on azure")

    stop_services(fresh_settings, names)
    assert not any(status.running for status in services_status(fresh_settings, names))
    start_services(fresh_settings, names, timeout=60)

    blob = gcs_client(fresh_settings, monkeypatch).bucket(unique_name).blob("a.txt")
    assert blob.download_as_bytes() == b"on gcs"
    container = azure_client(fresh_settings).get_container_client(unique_name)
    assert container.download_blob("a.txt").readall() == b"on azure"


def test_stop_kills_an_azurite_that_does_not_exit_on_sigterm(fresh_settings: Settings) -> None:
    service = AzuriteServer(fresh_settings)
    started = service.start(timeout=60)
    assert started.healthy and started.pid is not None
    os.kill(started.pid, signal.SIGSTOP)  # a stopped process holds SIGTERM pending; not SIGKILL

    began = time.monotonic()
    service.stop(grace=1)

    assert time.monotonic() - began < 5
    assert not psutil.pid_exists(started.pid)
    assert not service.pid_file.exists()
    assert not port_in_use(fresh_settings.local_azure_port)


def test_a_service_started_with_other_settings_is_restarted(fresh_settings):
    first = SeaweedS3Server(fresh_settings)
    pid = first.start().pid
    # Same ports and data, other environment: e.g. an older project version started it.
    changed = SeaweedS3Server(fresh_settings)
    changed.environment = lambda: {**first.environment(), "LOOP_TEST_MARKER": "1"}
    restarted = changed.start()
    assert restarted.pid != pid and restarted.healthy
    assert changed.start().pid == restarted.pid, "same settings: reused"


def test_label_studio_secrets_stay_off_command_lines_and_out_of_logs_and_other_users_reach(
    fresh_settings: Settings,
) -> None:
    password, token = f"pw-{uuid.uuid4().hex}", uuid.uuid4().hex + "0" * 8
    settings = fresh_settings.model_copy(
        update={
            "label_studio_password": SecretStr(password),
            "label_studio_api_key": SecretStr(token),
        }
    )
    start_services(settings, ["label_studio", "s3"])

    for process in psutil.process_iter(["cmdline"]):
        command_line = " ".join(process.info["cmdline"] or [])
        assert password not in command_line and token not in command_line, process
    service = LabelStudioServer(settings)
    for written in (service.log_file, service.pid_file):
        text = written.read_text()
        assert password not in text and token not in text, written
    # The secrets reached Label Studio all the same: the token is accepted, the password logs in.
    assert label_studio_login(settings.label_studio_url, settings.label_studio_username, password)
    assert not label_studio_login(settings.label_studio_url, settings.label_studio_username, "no")

    # Its database (users, tokens), the S3 stand-in's data, logs, pid files: owner-only.
    assert stat.S_IMODE(settings.state_dir.stat().st_mode) == 0o700
    readable = [
        path
        for path in [settings.state_dir, *settings.state_dir.rglob("*")]
        if not path.is_symlink() and stat.S_IMODE(path.stat().st_mode) & 0o077
    ]
    assert not readable, f"group/world bits on {readable[:5]}"
    assert (service.data_dir / "label_studio.sqlite3").exists()


def label_studio_login(url: str, email: str, password: str) -> bool:
    """Whether Label Studio's login form accepts `email` / `password`."""
    with httpx.Client(base_url=url, trust_env=False, timeout=30) as browser:
        browser.get("/user/login/")
        answer = browser.post(
            "/user/login/",
            data={
                "email": email,
                "password": password,
                "csrfmiddlewaretoken": browser.cookies["csrftoken"],
            },
            headers={"Referer": f"{url}/user/login/"},
        )
    return answer.status_code == 302


def test_a_live_process_of_ours_is_not_label_studio_when_another_program_answers(
    fresh_settings: Settings,
) -> None:
    """The pid file names a live process of ours, but another program's server answers
    /health=UP on Label Studio's port: it is neither reused nor trusted by the demo."""
    service = LabelStudioServer(fresh_settings)
    sleeper = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True
    )
    service.pid_file.parent.mkdir(parents=True)
    service.pid_file.write_text(
        json.dumps(
            {
                "pid": sleeper.pid,
                "create_time": psutil.Process(sleeper.pid).create_time(),
                "fingerprint": service._fingerprint(),
            }
        )
    )
    foreign = HTTPServer(("127.0.0.1", fresh_settings.label_studio_port), AnswersUp)
    threading.Thread(target=foreign.serve_forever, daemon=True).start()
    try:
        assert service.status().running and not service.status().healthy
        with pytest.raises(ServiceError) as error:
            require_own_label_studio_process(fresh_settings)
        assert "\n" not in str(error.value)
        with pytest.raises(ServiceError, match="answered by another program") as error:
            service.start(timeout=60)
        assert "\n" not in str(error.value)
        assert sleeper.wait(timeout=10) is not None, "our stray process was stopped"
    finally:
        foreign.shutdown()
        foreign.server_close()
        sleeper.kill()


class AnswersUp(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"status": "UP"}')

    def log_message(self, *args: object) -> None:
        pass


def test_a_foreign_label_studio_on_the_port_is_never_started_on(fresh_settings: Settings) -> None:
    foreign = HTTPServer(("127.0.0.1", fresh_settings.label_studio_port), AnswersUp)
    threading.Thread(target=foreign.serve_forever, daemon=True).start()
    try:
        with pytest.raises(ServiceError, match="used by another program") as error:
            start_services(fresh_settings, ["label_studio"])
        assert "\n" not in str(error.value)
        assert not LabelStudioServer(fresh_settings).status().healthy
    finally:
        foreign.shutdown()
        foreign.server_close()
