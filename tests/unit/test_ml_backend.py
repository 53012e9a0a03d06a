import logging
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from annotation_loop.ml_backend import ModelHolder, ServedModel, check_label_config, create_app
from annotation_loop.retraining import RetrainingTrigger, subprocess_launcher
from annotation_loop.task_types import get_task_type
from annotation_loop.task_types.base import Example, TaskType
from annotation_loop.text.checkpoint import TextCheckpoint

TEXT = get_task_type("text")
LABELS = ("fresh", "rotten")
LABEL_CONFIG = TEXT.label_config(LABELS)
TRAINING_TEXTS = {
    "a great film, wonderful": "fresh",
    "an awful, boring film": "rotten",
    "superb acting": "fresh",
    "a terrible plot": "rotten",
    "brilliant and delightful": "fresh",
    "dull and dreadful": "rotten",
    "an excellent story": "fresh",
    "a horrible movie": "rotten",
}
PROJECT = "7.1717171717"  # how Label Studio names a project: "<id>.<created timestamp>"


@pytest.fixture(scope="module")
def checkpoint() -> TextCheckpoint:
    examples = [
        Example(str(n), text, label) for n, (text, label) in enumerate(TRAINING_TEXTS.items())
    ]
    config = {"max_length": 32, "stride": 8, "epochs": 1, "batch_size": 4}
    model, _ = TEXT.train(examples, LABELS, config, init=None)
    return model


class FakeSource:
    """The Model Control Plane's production versions (tested for real in the integration
    tests); a version missing from `models` fails to load."""

    def __init__(self, models: dict[str, ServedModel]) -> None:
        self.models = models
        self.production: str | None = None
        self.lookups = 0
        self.loads: list[str] = []

    def production_version(self) -> str | None:
        self.lookups += 1
        return self.production

    def load(self, version: str) -> ServedModel:
        self.loads.append(version)
        return self.models[version]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def served(model: Any, version: int, task_type: TaskType = TEXT) -> ServedModel:
    return ServedModel(f"review_classifier:{version}", task_type, LABELS, model)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def source(checkpoint: TextCheckpoint) -> FakeSource:
    return FakeSource({"1": served(checkpoint, 1), "2": served(checkpoint, 2)})


@pytest.fixture
def holder(source: FakeSource, clock: Clock) -> ModelHolder:
    return ModelHolder(source, reload_interval_s=30, clock=clock)


@dataclass
class NeverEnding:
    """A training run that goes on for the whole test."""

    log_path: Path | None = None

    def poll(self) -> int | None:
        return None


@pytest.fixture
def runs() -> list[NeverEnding]:
    return []


@pytest.fixture
def trigger(runs: list[NeverEnding]) -> RetrainingTrigger:
    def start() -> NeverEnding:
        runs.append(NeverEnding())
        return runs[-1]

    return RetrainingTrigger(start, threshold=1000)


@pytest.fixture
def client(holder: ModelHolder, trigger: RetrainingTrigger) -> TestClient:
    return TestClient(create_app(holder, None, trigger, batch_size=2))


# -- label configs -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label_config", "reason"),
    [
        (LABEL_CONFIG, None),
        (TEXT.label_config((*LABELS, "meh")), None),  # more labels than the model knows
        (TEXT.label_config(["fresh"]), "lacks labels the model predicts: ['rotten']"),
        (get_task_type("ner").label_config(LABELS), "is <Labels name"),
        (get_task_type("image").label_config(LABELS), 'toName="image"'),
        (LABEL_CONFIG.replace("$text", "$review"), 'value="$review"'),
        (LABEL_CONFIG.replace('name="label"', 'name="sentiment"'), "'label' is missing"),
        ("<View><Choices", "not valid XML"),
    ],
)
def test_label_config_compatibility(label_config: str, reason: str | None) -> None:
    found = check_label_config(label_config, TEXT, LABELS)
    if reason is None:
        assert found is None
    else:
        assert found is not None and reason in found and "\n" not in found


# -- the served model ----------------------------------------------------------------------


def test_holder_serves_nothing_before_a_production_version(
    holder: ModelHolder, source: FakeSource, clock: Clock
) -> None:
    assert holder.current() is None
    clock.now = 29
    assert holder.current() is None
    assert source.lookups == 1  # at most one lookup per reload interval
    clock.now = 30
    assert holder.current() is None
    assert source.lookups == 2


def test_holder_switches_to_a_promoted_version(
    holder: ModelHolder, source: FakeSource, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    source.production = "1"
    first = holder.current()
    assert first is not None and first.model_version == "review_classifier:1"
    source.production = "2"
    clock.now = 10
    assert holder.current() is first
    with caplog.at_level(logging.INFO, logger="annotation_loop.ml_backend"):
        clock.now = 30
        second = holder.current()
    assert second is not None and second.model_version == "review_classifier:2"
    assert holder.served is second
    assert source.loads == ["1", "2"]
    assert "Serving review_classifier:2 (was review_classifier:1)" in caplog.text
    clock.now = 60
    holder.current()
    assert source.loads == ["1", "2"]  # the same version is not loaded again


def test_holder_keeps_serving_when_a_version_fails_to_load(
    holder: ModelHolder, source: FakeSource, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    source.production = "1"
    holder.current()
    source.production = "3"  # cannot be loaded
    clock.now = 30
    with caplog.at_level(logging.ERROR, logger="annotation_loop.ml_backend"):
        model = holder.current()
    assert model is not None and model.model_version == "review_classifier:1"
    assert "Could not load production version 3" in caplog.text

    def unreachable() -> str:
        raise ConnectionError("the ZenML server is down")

    source.production_version = unreachable  # type: ignore[method-assign]
    clock.now = 60
    model = holder.current()
    assert model is not None and model.model_version == "review_classifier:1"


# -- the protocol --------------------------------------------------------------------------


def predict_request(
    tasks: list[dict[str, Any]], label_config: str = LABEL_CONFIG
) -> dict[str, Any]:
    """A `/predict` body as Label Studio 1.23 sends it."""
    return {
        "tasks": tasks,
        "project": PROJECT,
        "label_config": label_config,
        "params": {"login": None, "password": None, "context": None},
    }


def task(task_id: int, **data: Any) -> dict[str, Any]:
    """A task as Label Studio serializes it for `/predict`."""
    return {
        "id": task_id,
        "data": data,
        "meta": {},
        "annotations": [],
        "predictions": [],
        "project": 7,
    }


def test_health(client: TestClient, source: FakeSource) -> None:
    answer = client.get("/health")
    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["model_version"]) == ("UP", None)
    assert body["retraining"] == {
        "pending": 0,
        "running": False,
        "runs_started": 0,
        "last_exit_code": None,
        "last_failure": None,
    }
    assert source.lookups == 0  # health answers within Label Studio's 1 s, from memory


def test_setup_accepts_a_compatible_project(client: TestClient, source: FakeSource) -> None:
    body = {
        "project": PROJECT,
        "schema": LABEL_CONFIG,
        "hostname": "http://ls",
        "access_token": "t",
    }
    assert client.post("/setup", json=body).json() == {"model_version": None}
    source.production = "1"
    client.post("/predict", json=predict_request([task(1, text="superb")]))
    answer = client.post("/setup", json=body)
    assert answer.status_code == 200
    assert answer.json() == {"model_version": "review_classifier:1"}


def test_setup_refuses_an_incompatible_project(
    client: TestClient, source: FakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    source.production = "1"
    client.post("/predict", json=predict_request([task(1, text="superb")]))
    schema = get_task_type("ner").label_config(LABELS)  # Labels where the model needs Choices
    with caplog.at_level(logging.WARNING, logger="annotation_loop.ml_backend"):
        answer = client.post("/setup", json={"project": PROJECT, "schema": schema})
    assert answer.status_code == 422
    reason = check_label_config(schema, TEXT, LABELS)
    assert reason is not None
    assert answer.json()["error"] == reason
    assert (
        f"Refused project 7: its label config does not fit review_classifier:1: {reason}"
        in caplog.text
    )


def test_predict_before_a_production_model(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="annotation_loop.ml_backend"):
        answer = client.post(
            "/predict", json=predict_request([task(1, text="a"), task(2, text="b")])
        )
    assert answer.status_code == 200
    # One entry per task, each an empty list of predictions: Label Studio stores nothing.
    assert answer.json() == {"results": [[], []]}
    assert "No production model yet: run --train" in caplog.text


def test_predict_a_batch(
    client: TestClient,
    source: FakeSource,
    checkpoint: TextCheckpoint,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source.production = "1"
    calls = []
    predict = TEXT.predict

    def spy(model: Any, inputs: Any, batch_size: int) -> Any:
        calls.append(batch_size)
        return predict(model, inputs, batch_size)

    monkeypatch.setattr(TEXT, "predict", spy)
    texts = ["what a superb, brilliant film", "so dull and awful", "excellent acting"]
    tasks = [
        task(11, text=texts[0]),
        task(12, review="no text field"),
        task(13, text="   "),  # nothing to read
        task(14, text=texts[1]),
        task(15, text=texts[2]),
    ]
    answer = client.post("/predict", json=predict_request(tasks))
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert len(results) == len(tasks)
    assert results[1] == results[2] == []
    assert calls == [2]  # the whole batch in one call, with the app's batch size
    expected, _ = predict(checkpoint, [(text, text) for text in texts], 32)
    for text, result, prediction in zip(
        texts, [results[0], results[3], results[4]], expected, strict=True
    ):
        assert result["model_version"] == "review_classifier:1"
        assert result["score"] == pytest.approx(prediction.score, abs=1e-4)
        assert 0 <= result["score"] <= 1
        assert (
            TEXT.target_from_result(result["result"], text, LABELS, "a task") == prediction.target
        )


def test_predict_uses_a_promoted_version(
    client: TestClient, source: FakeSource, clock: Clock
) -> None:
    source.production = "1"
    request = predict_request([task(1, text="superb")])
    assert (
        client.post("/predict", json=request).json()["results"][0]["model_version"]
        == "review_classifier:1"
    )
    source.production = "2"
    clock.now = 30
    assert (
        client.post("/predict", json=request).json()["results"][0]["model_version"]
        == "review_classifier:2"
    )
    assert client.get("/health").json()["model_version"] == "review_classifier:2"


def test_predict_refuses_an_incompatible_project(
    client: TestClient, source: FakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    source.production = "1"
    request = predict_request([task(1, text="superb")], label_config=TEXT.label_config(["fresh"]))
    with caplog.at_level(logging.WARNING, logger="annotation_loop.ml_backend"):
        answer = client.post("/predict", json=request)
    assert answer.json() == {"results": [[]]}
    assert "No predictions for project 7: its tag 'label' lacks labels" in caplog.text


def test_predict_images_without_a_bucket(
    holder: ModelHolder, source: FakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    image = get_task_type("image")
    source.models["1"] = served(None, 1, task_type=image)
    source.production = "1"
    client = TestClient(create_app(holder, None, None))
    request = predict_request(
        [task(1, image="s3://b/1.png", uri="s3://b/1.png")], image.label_config(LABELS)
    )
    with caplog.at_level(logging.ERROR, logger="annotation_loop.ml_backend"):
        answer = client.post("/predict", json=request)
    assert answer.json() == {"results": [[]]}
    assert "started without one" in caplog.text


# -- webhooks ------------------------------------------------------------------------------


def annotation(annotation_id: int, was_cancelled: bool = False) -> dict[str, Any]:
    return {
        "id": annotation_id,
        "result": [
            {
                "from_name": "label",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": ["fresh"]},
            }
        ],
        "was_cancelled": was_cancelled,
        "task": annotation_id,
        "project": 7,
    }


def event(action: str, **payload: Any) -> dict[str, Any]:
    """A webhook body as Label Studio posts it (`send_payload`)."""
    return {"action": action, "project": {"id": 7, "label_config": LABEL_CONFIG}, **payload}


def test_annotation_webhooks_are_counted(
    client: TestClient, trigger: RetrainingTrigger, runs: list[NeverEnding]
) -> None:
    bodies = [
        event("ANNOTATION_CREATED", annotation=annotation(1), task={"id": 1}),
        event("ANNOTATION_UPDATED", annotation=annotation(1), task={"id": 1}),
        event(
            "ANNOTATIONS_CREATED",
            annotation=[annotation(2), annotation(3), annotation(4, was_cancelled=True)],
            task=[{"id": 2}, {"id": 3}, {"id": 4}],
        ),
    ]
    for body in bodies:
        answer = client.post("/webhook", json=body)
        assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
    assert trigger.status.pending == 4  # the skipped task's annotation labels nothing
    assert client.get("/health").json()["retraining"]["pending"] == 4
    assert runs == []  # nothing trains inside a request


@pytest.mark.parametrize(
    "body",
    [
        event("TASKS_CREATED", tasks=[{"id": 1}]),
        event("ANNOTATIONS_DELETED", annotations=[{"id": 1}]),
        event("ANNOTATION_CREATED", task={"id": 1}),  # no annotation
        event("ANNOTATION_CREATED", annotation="1"),
        event("ANNOTATIONS_CREATED", annotation=[]),
        event("ANNOTATION_CREATED", annotation=annotation(1, was_cancelled=True)),
        {"annotation": annotation(1)},  # no action
        [event("ANNOTATION_CREATED", annotation=annotation(1))],
    ],
)
def test_other_webhooks_are_ignored(
    client: TestClient, trigger: RetrainingTrigger, body: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="annotation_loop.ml_backend"):
        answer = client.post("/webhook", json=body)
    assert (answer.status_code, answer.json()["status"]) == (200, "ignored")
    assert trigger.status.pending == 0
    assert "Ignored webhook" in caplog.text


def test_a_webhook_that_is_not_json_is_ignored(
    client: TestClient, trigger: RetrainingTrigger
) -> None:
    answer = client.post(
        "/webhook", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (answer.status_code, answer.json()["status"]) == (200, "ignored")
    assert trigger.status.pending == 0


def test_start_training_asks_for_a_run(
    client: TestClient, trigger: RetrainingTrigger, runs: list[NeverEnding]
) -> None:
    answer = client.post("/webhook", json={"action": "START_TRAINING", "project": {"id": 7}})
    assert answer.json() == {"status": "ok"}
    assert runs == []
    trigger.tick()
    assert len(runs) == 1


def test_webhooks_without_retraining(holder: ModelHolder) -> None:
    client = TestClient(create_app(holder, None, None))
    answer = client.post("/webhook", json=event("ANNOTATION_CREATED", annotation=annotation(1)))
    assert answer.json() == {"status": "ignored", "reason": "retraining is off"}
    assert client.get("/health").json()["retraining"] is None


def test_the_running_app_loads_the_model_and_retrains(
    holder: ModelHolder, source: FakeSource, tmp_path: Path
) -> None:
    source.production = "1"
    launch = subprocess_launcher([sys.executable, "-c", "pass"], tmp_path)
    trigger = RetrainingTrigger(launch, threshold=1, quiet_period_s=0)
    with TestClient(create_app(holder, None, trigger)) as client:
        assert source.loads == ["1"]  # before the first request
        client.post("/webhook", json=event("ANNOTATION_CREATED", annotation=annotation(1)))
        wait_for(lambda: trigger.status.last_exit_code == 0)
    assert trigger.status.pending == 0


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
