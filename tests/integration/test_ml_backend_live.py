"""`run.py serve` against the real Label Studio: connecting with basic auth, predicting when an
annotator opens a task, new annotations that start a training run, and Label Studio's SSRF
protection kept on."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from zenml.client import Client

from annotation_loop import app
from annotation_loop.app.demo import label_batch_with_oracle
from annotation_loop.app.serve import backend_server
from annotation_loop.data.storage import ObjectStore
from annotation_loop.dev.services import LabelStudioServer
from annotation_loop.errors import LoopError
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.ml_backend.auth import WEBHOOK_SECRET_HEADER, backend_credentials
from annotation_loop.task_types import get_task_type
from annotation_loop.task_types.choices import result_for_label
from annotation_loop.vision.mnist import seed_mnist_batches

pytestmark = pytest.mark.integration

BATCH_SIZE = 30
RETRAIN_AFTER = 3


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_for(condition: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")


def test_backend_predicts_opened_tasks_and_retrains_after_annotations(cloud_settings):
    settings = cloud_settings("local")
    image = get_task_type("image")
    store = ObjectStore(settings.data_source("local"))
    store.ensure_bucket()
    truth = seed_mnist_batches(store, batches=2, batch_size=BATCH_SIZE, seed=3)
    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )
    synced = app.infer("local", settings, rerun=False)
    label_batch_with_oracle(client, settings, "local", synced, truth)
    assert app.train("local", settings, rerun=True).model_version == "1"
    project_id = client.get_or_create_project(
        settings.project_name, image.label_config(settings.labels)
    )
    served_version = f"{settings.model_name}:1"

    port = free_port()
    backend_url = f"http://127.0.0.1:{port}"
    server = backend_server(
        "local", settings, "127.0.0.1", port, backend_url, RETRAIN_AFTER, quiet_period=1.0
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    ls = httpx.Client(
        base_url=settings.label_studio_url,
        headers={"Authorization": f"Token {settings.label_studio_api_key.get_secret_value()}"},
        timeout=60,
    )
    credentials = backend_credentials(settings)
    basic_auth = (credentials.user, credentials.password.get_secret_value())
    try:
        (backend,) = wait_for(
            lambda: ls.get("/api/ml", params={"project": project_id}).json(),
            60,
            "the backend to be connected",
        )
        assert backend["url"] == backend_url
        assert (backend["auth_method"], backend["basic_auth_user"]) == (
            "BASIC_AUTH",
            "label-studio",
        )
        assert backend["basic_auth_pass_is_set"]
        assert "basic_auth_pass" not in backend  # Label Studio never shows it again
        project = ls.get(f"/api/projects/{project_id}").json()
        assert project["model_version"] == served_version
        assert project["sampling"] == "Uncertainty sampling"
        # Its SSRF protection refuses a webhook to loopback: the backend counts annotations
        # by asking Label Studio instead.
        hooks = ls.get("/api/webhooks/", params={"project": project_id}).json()
        assert [h for h in hooks if h["url"].startswith(backend_url)] == []

        # Without the credentials the backend answers nothing but its health.
        assert httpx.get(f"{backend_url}/health").json() == {
            "status": "UP",
            "model_class": "annotation_loop",
        }
        body = {"tasks": [], "project": f"{project_id}.1", "label_config": ""}
        assert httpx.post(f"{backend_url}/predict", json=body).status_code == 401
        wrong = (credentials.user, "wrong")
        assert httpx.post(f"{backend_url}/predict", json=body, auth=wrong).status_code == 401
        with pytest.raises(LoopError, match="refused the ML backend"):
            client.connect_ml_backend(project_id, backend_url, served_version, wrong)
        # Connecting again with the right ones updates the same connection.
        assert (
            client.connect_ml_backend(project_id, backend_url, served_version, basic_auth)
            == backend["id"]
        )

        # Tasks nobody predicted: opening one makes Label Studio ask the backend.
        items = image.list_items(store, "batch_2").items[:RETRAIN_AFTER]
        task_ids = client.import_tasks(project_id, [image.task_data(i, store) for i in items])
        (prediction,) = ls.get(f"/api/tasks/{task_ids[0]}").json()["predictions"]
        assert prediction["model_version"] == served_version
        assert 0 < prediction["score"] <= 1
        label = image.target_from_result(
            prediction["result"], items[0].uri, settings.labels, where=f"task {task_ids[0]}"
        )
        assert label in settings.labels

        # The backend counts the new annotations; past the threshold and a quiet second, one
        # training run starts in the background and makes version 2.
        for item, task_id in zip(items, task_ids, strict=True):
            client.create_annotation(task_id, result_for_label(truth[item.key], "image"))

        def finished_run() -> dict[str, Any] | None:
            health = httpx.get(f"{backend_url}/health", auth=basic_auth).json()
            status = health["retraining"]
            return status if status["runs_started"] and not status["running"] else None

        status = wait_for(finished_run, 300, "the training run the new annotations started")
        assert status["runs_started"] == 1, status
        assert status["last_exit_code"] == 0, status
        versions = Client().list_model_versions(model=settings.model_name)
        assert versions.total == 2
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        ls.close()


def test_label_studio_keeps_its_ssrf_protection(
    services: Any, client: LabelStudioClient, project: int
) -> None:
    environment = LabelStudioServer(services).environment()
    assert environment.get("USE_DEFAULT_BANNED_SUBNETS", "true") != "false"
    assert environment.get("SSRF_PROTECTION_ENABLED", "true") != "false"
    # The running server refuses loopback, private and metadata addresses for webhooks.
    for url in (
        f"{services.label_studio_url}/api/projects",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
    ):
        with pytest.raises(LoopError, match="reserved network address"):
            client.ensure_webhook(project, url, {WEBHOOK_SECRET_HEADER: "x"})


def test_the_webhook_carries_the_secret_header(client: LabelStudioClient, project: int) -> None:
    # A public address Label Studio accepts (it only checks it; nothing is posted here).
    url = "http://93.184.215.14:9/webhook"
    first = client.ensure_webhook(project, url, {WEBHOOK_SECRET_HEADER: "first"})
    again = client.ensure_webhook(project, url, {WEBHOOK_SECRET_HEADER: "second"})
    assert again == first
    hooks = client.transport.request(
        "GET", "/api/webhooks/", params={"project": project}, repeatable=True
    )
    (hook,) = [h for h in hooks if h["url"] == url]
    assert hook["headers"] == {WEBHOOK_SECRET_HEADER: "second"}
    assert (hook["send_payload"], hook["send_for_all_actions"], hook["is_active"]) == (
        True,
        True,
        True,
    )
