"""The local services against the real binaries: reuse, health, credentials, stop."""

import socket
import time
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import httpx
import psutil
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from annotation_loop.errors import ServiceError
from annotation_loop.services import (
    LabelStudioServer,
    SeaweedS3Server,
    port_in_use,
    services_status,
)
from annotation_loop.settings import Settings

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


def test_start_reuses_the_running_services(services: Settings) -> None:
    for service in (LabelStudioServer(services), SeaweedS3Server(services)):
        before = service.status()
        started = time.monotonic()
        after = service.start()
        assert time.monotonic() - started < 5, f"{service.name} was not reused"
        assert before.running and before.pid is not None
        assert after.pid == before.pid
        assert after.healthy


def test_status_reports_healthy_services(services: Settings) -> None:
    statuses = {status.name: status for status in services_status(services)}
    assert statuses.keys() == {"label_studio", "s3"}
    assert statuses["label_studio"].url == services.label_studio_url
    assert statuses["s3"].url == services.local_s3_endpoint_url
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
