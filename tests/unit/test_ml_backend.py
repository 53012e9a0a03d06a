import json
import logging
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from annotation_loop.errors import LabelStudioUnreachable
from annotation_loop.ml_backend import ModelHolder, ServedModel, check_label_config, create_app
from annotation_loop.ml_backend.annotation_watch import AnnotationWatch
from annotation_loop.ml_backend.app import DEFAULT_LIMITS
from annotation_loop.ml_backend.auth import WEBHOOK_SECRET_HEADER, BackendCredentials
from annotation_loop.ml_backend.limits import BodySizeLimit, RequestLimits
from annotation_loop.ml_backend.predictions import predict_tasks
from annotation_loop.ml_backend.retraining import RetrainingTrigger, subprocess_launcher
from annotation_loop.quality.sampling import LabelQuality
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
PROJECT_ID = 7
PROJECT = "7.1717171717"  # how Label Studio names a project: "<id>.<created timestamp>"
CREDENTIALS = BackendCredentials("label-studio", SecretStr("s3cret"), SecretStr("hook-s3cret"))
BASIC_AUTH = ("label-studio", "s3cret")


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


class RecordingWatch(AnnotationWatch):
    """The watch over Label Studio's annotation count, with the times it was nudged."""

    def __init__(self, counts: list[int], record: Callable[[int], None]) -> None:
        super().__init__(lambda: counts[0], record)
        self.nudges = 0

    def nudge(self) -> None:
        self.nudges += 1
        super().nudge()


@pytest.fixture
def watch(trigger: RetrainingTrigger) -> RecordingWatch:
    return RecordingWatch([0], trigger.record)


def backend(
    holder: ModelHolder,
    trigger: RetrainingTrigger | None = None,
    watch: AnnotationWatch | None = None,
    limits: RequestLimits = DEFAULT_LIMITS,
    credentials: BackendCredentials | None = CREDENTIALS,
) -> TestClient:
    """A client of the backend of project 7, with its credentials."""
    app = create_app(
        holder,
        None,
        PROJECT_ID,
        credentials,
        trigger=trigger,
        watch=watch,
        limits=limits,
        batch_size=2,
    )
    client = TestClient(app)
    client.auth = BASIC_AUTH
    return client


@pytest.fixture
def client(holder: ModelHolder, trigger: RetrainingTrigger, watch: RecordingWatch) -> TestClient:
    return backend(holder, trigger, watch)


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
    retraining = body["retraining"]
    assert (retraining["pending"], retraining["running"], retraining["runs_started"]) == (
        0,
        False,
        0,
    )
    assert source.lookups == 0  # health answers within Label Studio's 1 s, from memory


def test_health_tells_others_only_that_it_is_up(client: TestClient) -> None:
    client.auth = None
    answer = client.get("/health")
    assert answer.status_code == 200
    assert answer.json() == {"status": "UP", "model_class": "annotation_loop"}


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
    # The four tasks with a text, a batch (the app's batch size) at a time: the deadline is
    # looked at between batches.
    assert calls == [2, 2]
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


def test_control_tasks_of_the_anchoring_check_get_no_prediction(
    holder: ModelHolder, source: FakeSource
) -> None:
    source.production = "1"
    quality = LabelQuality(overlap_share=0.5, anchoring_share=0.5)
    hashes = [f"item-{n}" for n in range(20)]
    withheld = [h for h in hashes if quality.withholds_pre_annotation(h)]
    shown = [h for h in hashes if not quality.withholds_pre_annotation(h)]
    assert withheld and shown
    app = create_app(holder, None, PROJECT_ID, CREDENTIALS, quality=quality)
    client = TestClient(app)
    client.auth = BASIC_AUTH
    tasks = [task(n, text="superb film", content_hash=h) for n, h in enumerate(hashes)]
    results = client.post("/predict", json=predict_request(tasks)).json()["results"]
    assert [bool(r) for r in results] == [h in shown for h in hashes]


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
    client = backend(holder)
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
        "project": PROJECT_ID,
    }


def event(action: str, project_id: int = PROJECT_ID, **payload: Any) -> dict[str, Any]:
    """A webhook body as Label Studio posts it (`send_payload`)."""
    return {
        "action": action,
        "project": {"id": project_id, "label_config": LABEL_CONFIG},
        **payload,
    }


WEBHOOK_SECRET = {WEBHOOK_SECRET_HEADER: "hook-s3cret"}


def test_annotation_webhooks_make_the_watch_look(
    client: TestClient, watch: RecordingWatch, runs: list[NeverEnding]
) -> None:
    client.auth = None  # Label Studio's webhooks carry the secret header, not basic auth
    bodies = [
        event("ANNOTATION_CREATED", annotation=annotation(1), task={"id": 1}),
        event("ANNOTATION_UPDATED", annotation=annotation(1), task={"id": 1}),
        event("ANNOTATIONS_CREATED", annotation=[annotation(2), annotation(3)]),
        event("ANNOTATIONS_DELETED", annotations=[{"id": 1}]),
    ]
    for body in bodies:
        answer = client.post("/webhook", json=body, headers=WEBHOOK_SECRET)
        assert (answer.status_code, answer.json()) == (200, {"status": "ok"})
    assert watch.nudges == len(bodies)  # the count itself comes from Label Studio
    assert runs == []  # nothing trains inside a request


@pytest.mark.parametrize(
    "body",
    [
        event("TASKS_CREATED", tasks=[{"id": 1}]),
        event("PROJECT_UPDATED"),
        {"annotation": annotation(1)},  # no action
        [event("ANNOTATION_CREATED", annotation=annotation(1))],
    ],
)
def test_other_webhooks_are_ignored(
    client: TestClient, watch: RecordingWatch, body: Any, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="annotation_loop.ml_backend"):
        answer = client.post("/webhook", json=body)
    assert (answer.status_code, answer.json()["status"]) == (200, "ignored")
    assert watch.nudges == 0
    assert "Ignored webhook" in caplog.text


@pytest.mark.parametrize(
    "body",
    [
        event("ANNOTATION_CREATED", project_id=8, annotation=annotation(1)),
        event("START_TRAINING", project_id=8),
        {"action": "ANNOTATION_CREATED", "annotation": annotation(1)},  # no project
        {"action": "START_TRAINING", "project": {"id": "7"}},
    ],
)
def test_webhooks_about_another_project_are_ignored_and_logged(
    client: TestClient,
    watch: RecordingWatch,
    trigger: RetrainingTrigger,
    runs: list[NeverEnding],
    body: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="annotation_loop.ml_backend"):
        answer = client.post("/webhook", json=body)
    assert answer.json() == {"status": "ignored", "reason": "not about project 7"}
    trigger.tick()
    assert (watch.nudges, runs) == (0, [])
    assert f"Ignored webhook {body['action']} about project" in caplog.text
    assert "this backend serves project 7" in caplog.text


def test_a_webhook_that_is_not_json_is_ignored(client: TestClient, watch: RecordingWatch) -> None:
    answer = client.post(
        "/webhook", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (answer.status_code, answer.json()["status"]) == (200, "ignored")
    assert watch.nudges == 0


def test_start_training_asks_for_a_run(
    client: TestClient, trigger: RetrainingTrigger, runs: list[NeverEnding]
) -> None:
    # "Start Training" comes through the ML backend connection, with its basic auth.
    answer = client.post("/webhook", json=event("START_TRAINING"))
    assert answer.json() == {"status": "ok"}
    assert runs == []
    trigger.tick()
    assert len(runs) == 1


def test_webhooks_without_retraining(holder: ModelHolder) -> None:
    client = backend(holder)
    answer = client.post("/webhook", json=event("ANNOTATION_CREATED", annotation=annotation(1)))
    assert answer.json() == {"status": "ignored", "reason": "retraining is off"}
    assert client.get("/health").json()["retraining"] is None


def test_the_running_app_loads_the_model_and_retrains(
    holder: ModelHolder, source: FakeSource, tmp_path: Path
) -> None:
    source.production = "1"
    launch = subprocess_launcher([sys.executable, "-c", "pass"], tmp_path)
    trigger = RetrainingTrigger(launch, threshold=1, quiet_period_s=0)
    counts = [5]  # annotations before the backend started do not count
    watch = RecordingWatch(counts, trigger.record)
    with backend(holder, trigger, watch) as client:
        assert source.loads == ["1"]  # before the first request
        counts[0] = 6
        client.post("/webhook", json=event("ANNOTATION_CREATED", annotation=annotation(1)))
        wait_for(lambda: trigger.status.last_exit_code == 0)
    assert trigger.status.pending == 0
    assert trigger.status.runs_started == 1


def wait_for(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


# -- limits --------------------------------------------------------------------------------


def test_a_body_over_the_limit_is_refused(holder: ModelHolder) -> None:
    client = backend(holder, limits=RequestLimits(max_body_bytes=1000))
    body = json.dumps(predict_request([task(1, text="x" * 2000)])).encode()
    headers = {"Content-Type": "application/json"}
    assert client.post("/predict", content=body, headers=headers).status_code == 413
    # Sent in chunks, without a Content-Length: refused once the bytes read pass the limit.
    chunked = client.post("/predict", content=iter([body[:600], body[600:]]), headers=headers)
    assert chunked.status_code == 413
    client.auth = None
    assert client.post("/predict", content=body, headers=headers).status_code == 401
    client.auth = BASIC_AUTH
    small = predict_request([task(1, text="x")])
    assert client.post("/predict", json=small).status_code == 200


def test_a_declared_oversized_body_is_never_read() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        raise AssertionError("the app must not run")

    async def receive() -> dict[str, Any]:
        raise AssertionError("the body must not be read")

    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/predict",
        "headers": [(b"content-length", b"1001")],
    }
    anyio.run(BodySizeLimit(app, max_bytes=1000), scope, receive, send)
    assert sent[0]["status"] == 413


def test_tasks_past_the_limit_get_no_prediction(
    holder: ModelHolder, source: FakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    source.production = "1"
    client = backend(holder, limits=RequestLimits(max_tasks=2))
    tasks = [task(1, text="superb"), task(2, text="awful"), task(3, text="brilliant")]
    with caplog.at_level(logging.WARNING, logger="annotation_loop.ml_backend"):
        results = client.post("/predict", json=predict_request(tasks)).json()["results"]
    assert len(results) == 3
    assert results[0] != [] and results[1] != [] and results[2] == []
    assert "asked for 3 tasks at once: only the first 2 get predictions" in caplog.text


def test_a_text_over_the_limit_gets_no_prediction(
    holder: ModelHolder, source: FakeSource, caplog: pytest.LogCaptureFixture
) -> None:
    source.production = "1"
    client = backend(holder, limits=RequestLimits(max_text_chars=20))
    tasks = [task(1, text="superb"), task(2, text="so dull " * 100), task(3, text="brilliant")]
    with caplog.at_level(logging.WARNING, logger="annotation_loop.ml_backend"):
        results = client.post("/predict", json=predict_request(tasks)).json()["results"]
    assert results[0] != [] and results[1] == [] and results[2] != []
    assert (
        "1 tasks get no prediction: their input is over 20 characters, e.g. task 2" in caplog.text
    )


def test_tasks_not_reached_by_the_deadline_get_no_prediction(
    checkpoint: TextCheckpoint, caplog: pytest.LogCaptureFixture
) -> None:
    ticks = iter([0.0, 1.0, 2.0])  # the clock as each batch is about to start
    tasks = [
        task(n, text=text) for n, text in enumerate(["superb", "awful", "great", "dull", "ok"])
    ]
    with caplog.at_level(logging.WARNING, logger="annotation_loop.ml_backend"):
        results = predict_tasks(
            served(checkpoint, 1),
            tasks,
            None,
            batch_size=2,
            deadline=2.0,
            clock=lambda: next(ticks),
        )
    assert [result != [] for result in results] == [True, True, True, True, False]
    assert "Deadline: 1 of 5 tasks left without a prediction, e.g. task 4" in caplog.text


def test_predictions_past_the_concurrency_limit_wait_then_get_503(
    holder: ModelHolder, source: FakeSource, monkeypatch: pytest.MonkeyPatch
) -> None:
    source.production = "1"
    predicting, release = threading.Event(), threading.Event()
    predict = TEXT.predict

    def held(model: Any, inputs: Any, batch_size: int) -> Any:
        predicting.set()
        assert release.wait(30)
        return predict(model, inputs, batch_size)

    monkeypatch.setattr(TEXT, "predict", held)
    limits = RequestLimits(max_concurrent_predictions=1, deadline_s=0.5)
    request = predict_request([task(1, text="superb")])
    with backend(holder, limits=limits) as client:
        first: list[Any] = []
        thread = threading.Thread(
            target=lambda: first.append(client.post("/predict", json=request))
        )
        thread.start()
        assert predicting.wait(30)
        busy = client.post("/predict", json=request)  # waits for the deadline: nothing frees
        assert busy.status_code == 503
        assert busy.headers["Retry-After"] == "10"
        assert client.get("/health").status_code == 200  # health never waits for a slot
        release.set()
        thread.join(30)
        assert first[0].status_code == 200 and first[0].json()["results"][0] != []
        assert client.post("/predict", json=request).status_code == 200  # the slot is free


# -- counting annotations ------------------------------------------------------------------


def test_the_watch_counts_new_annotations_from_label_studio(
    caplog: pytest.LogCaptureFixture,
) -> None:
    counts = [10]
    recorded: list[int] = []
    watch = AnnotationWatch(lambda: counts[0], recorded.append)
    watch.look()  # the starting point: annotations made before do not count
    counts[0] = 13
    watch.look()
    watch.look()
    counts[0] = 11  # two deleted: the new starting point
    watch.look()
    counts[0] = 12
    watch.look()
    assert recorded == [3, 1]

    def down() -> int:
        raise LabelStudioUnreachable("Label Studio is not reachable")

    watch = AnnotationWatch(down, recorded.append)
    with caplog.at_level(logging.WARNING, logger="annotation_loop.ml_backend"):
        watch.look()
    assert (
        "Could not count the project's annotations (Label Studio is not reachable)" in caplog.text
    )


def test_a_nudged_watch_looks_at_once() -> None:
    counts = [4]
    looked = threading.Semaphore(0)
    recorded: list[int] = []

    def count() -> int:
        looked.release()
        return counts[0]

    watch = AnnotationWatch(count, recorded.append, interval_s=3600)
    watch.start()
    try:
        assert looked.acquire(timeout=30)  # the first look, at start
        counts[0] = 6
        watch.nudge()
        assert looked.acquire(timeout=30)  # long before the interval
    finally:
        watch.stop()
    assert recorded == [2]
