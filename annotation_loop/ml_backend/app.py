"""The ML backend: the HTTP server Label Studio calls for pre-annotations, per its ML backend
protocol (as Label Studio 1.23's `ml/api_connector.py` speaks it).

- `GET /health`: `{"status": "UP", ...}`; Label Studio allows it 1 s. The only route open
  without credentials, and then it says nothing else.
- `POST /setup` `{"project": "<id>.<created timestamp>", "schema": <label config>, ...}`:
  `{"model_version": ...}`, or an HTTP error if the label config does not fit the model (Label
  Studio then refuses to connect the backend, showing only the status); it allows 3 s.
- `POST /predict` `{"tasks": [{"id", "data", ...}], "project", "label_config", "params"}`:
  `{"results": [...]}`, one entry per task, in order; it allows 100 s. With the annotator's
  regions in `params.context.result` (interactive preannotations), the first entry answers
  those regions of the one task sent (see `interactive`).
- `POST /webhook` `{"action": ..., "project": {"id": ...}, ...}`: the project's webhook events,
  for retraining.

Every route but `/health` needs the backend's basic auth (`/webhook` also takes the webhook's
secret header) and answers 401 without it; `RequestLimits` bounds what one request may cost.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from annotation_loop.data.storage import ObjectStore
from annotation_loop.errors import LoopError
from annotation_loop.ml_backend.annotation_watch import AnnotationWatch
from annotation_loop.ml_backend.auth import AuthGate, BackendAuth, BackendCredentials
from annotation_loop.ml_backend.interactive import interactive_regions, predict_interactively
from annotation_loop.ml_backend.label_config import check_label_config
from annotation_loop.ml_backend.limits import BodySizeLimit, RequestLimits
from annotation_loop.ml_backend.predictions import TaskResult, no_predictions, predict_tasks
from annotation_loop.ml_backend.retraining import RetrainingTrigger
from annotation_loop.ml_backend.served_model import ModelHolder
from annotation_loop.ml_backend.webhooks import START_TRAINING, read_event
from annotation_loop.quality.sampling import LabelQuality

logger = logging.getLogger(__name__)
DEFAULT_LIMITS = RequestLimits()


class SetupRequest(BaseModel):
    project: str  # "<project id>.<project creation timestamp>"
    label_config: str = Field(alias="schema")


class PredictRequest(BaseModel):
    tasks: list[dict[str, Any]]
    project: str
    label_config: str
    params: dict[str, Any] | None = None  # {"login", "password", "context"}


def project_id(project: str) -> str:
    return project.split(".", 1)[0]


def create_app(
    holder: ModelHolder,
    store: ObjectStore | None,
    project: int,
    credentials: BackendCredentials | None,
    *,
    trigger: RetrainingTrigger | None = None,
    watch: AnnotationWatch | None = None,
    limits: RequestLimits = DEFAULT_LIMITS,
    batch_size: int = 32,
    quality: LabelQuality | None = None,
) -> FastAPI:
    """The backend of Label Studio project `project`, serving `holder`'s model (inputs in
    `store`, if they live in a bucket) to callers with `credentials` (None: to anyone).

    The anchoring check's control tasks (see `LabelQuality`) get no prediction, interactive
    ones neither: their labels must be the annotators' own.

    Retraining, if any: `watch` counts the project's new annotations on `trigger`, which starts
    the runs. While the app runs (its lifespan), the production model is loaded before the
    first request, and the trigger and the watch work on their background threads.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(holder.current)
        for worker in (trigger, watch):
            if worker is not None:
                worker.start()
        try:
            yield
        finally:
            for worker in (watch, trigger):
                if worker is not None:
                    worker.stop()

    # No /docs or /openapi.json: nothing but the protocol answers.
    app = FastAPI(
        title="annotation-loop ML backend",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    auth = BackendAuth(credentials)
    # The last added runs first: unauthenticated requests are refused before their size counts.
    app.add_middleware(BodySizeLimit, max_bytes=limits.max_body_bytes)
    app.add_middleware(AuthGate, auth=auth)
    prediction_slots = anyio.Semaphore(limits.max_concurrent_predictions)

    @app.get("/health")
    async def health(request: Request) -> dict[str, Any]:
        answer: dict[str, Any] = {"status": "UP", "model_class": "annotation_loop"}
        if await auth.authenticated(request):
            served = holder.served
            answer["model_version"] = served.model_version if served else None
            answer["retraining"] = asdict(trigger.status) if trigger else None
        return answer

    @app.post("/setup", response_model=None)
    def setup(request: SetupRequest) -> dict[str, Any] | JSONResponse:
        # The served model, not a fresh check: loading a new version takes longer than the
        # 3 s Label Studio waits. /predict picks new versions up.
        served = holder.served
        if served is None:
            return {"model_version": None}
        reason = check_label_config(request.label_config, served.task_type, served.labels)
        if reason is not None:
            logger.warning(
                "Refused project %s: its label config does not fit %s: %s",
                project_id(request.project),
                served.model_version,
                reason,
            )
            return JSONResponse(status_code=422, content={"status": "error", "error": reason})
        return {"model_version": served.model_version}

    @app.post("/predict", response_model=None)
    async def predict(request: PredictRequest) -> dict[str, Any] | JSONResponse:
        deadline = time.monotonic() + limits.deadline_s
        # Waiting requests hold no thread, so /health answers however many wait.
        with anyio.move_on_after(limits.deadline_s) as waiting:
            await prediction_slots.acquire()
        if waiting.cancelled_caught:
            logger.warning(
                "Busy: %d tasks of project %s got no predictions (%d predictions at once "
                "took the whole %g s)",
                len(request.tasks),
                project_id(request.project),
                limits.max_concurrent_predictions,
                limits.deadline_s,
            )
            return JSONResponse(
                status_code=503,
                content={"status": "error", "error": "busy: try again later"},
                headers={"Retry-After": "10"},
            )
        try:
            results = await anyio.to_thread.run_sync(predict_now, request, deadline)
        finally:
            prediction_slots.release()
        return {"results": results}

    def predict_now(request: PredictRequest, deadline: float) -> list[TaskResult]:
        project = project_id(request.project)
        tasks = request.tasks[: limits.max_tasks]
        if len(request.tasks) > len(tasks):
            logger.warning(
                "Project %s asked for %d tasks at once: only the first %d get predictions",
                project,
                len(request.tasks),
                limits.max_tasks,
            )
        results = no_predictions(request.tasks)
        served = holder.current()
        if served is None:
            logger.info(
                "No production model yet: run --train (project %s gets no predictions)", project
            )
            return results
        reason = check_label_config(request.label_config, served.task_type, served.labels)
        if reason is not None:
            logger.warning("No predictions for project %s: %s", project, reason)
            return results
        # Positions in `tasks` of those that may be pre-annotated.
        shown = [
            position
            for position, task in enumerate(tasks)
            if quality is None
            or not quality.withholds_pre_annotation(str(task.get("data", {}).get("content_hash")))
        ]
        if len(shown) < len(tasks):
            logger.info(
                "%d tasks of project %s get no prediction: the anchoring check shows them "
                "without one",
                len(tasks) - len(shown),
                project,
            )
        regions = interactive_regions(request.params)
        try:
            if regions is not None and tasks:
                if len(tasks) > 1:
                    logger.warning(
                        "An interactive request of project %s sent %d tasks: only the first "
                        "is answered (the regions are its)",
                        project,
                        len(tasks),
                    )
                if shown[:1] == [0]:
                    results[0] = predict_interactively(
                        served, tasks[0], regions, store, limits.max_text_chars
                    )
                return results
            predicted = predict_tasks(
                served,
                [tasks[position] for position in shown],
                store,
                batch_size,
                max_input_chars=limits.max_text_chars,
                deadline=deadline,
            )
            for position, result in zip(shown, predicted, strict=True):
                results[position] = result
        except LoopError as error:
            logger.error("No predictions for project %s: %s", project, error)
            return results
        logger.info(
            "Predicted %d tasks of project %s with %s",
            sum(1 for result in results if result),
            project,
            served.model_version,
        )
        return results

    @app.post("/webhook")
    async def webhook(request: Request) -> dict[str, Any]:
        # Label Studio posts every project event here; none of them may fail.
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        event = read_event(payload)
        if event.action is not None and event.project_id != project:
            logger.warning(
                "Ignored webhook %s about project %s: this backend serves project %s",
                event.action,
                event.project_id,
                project,
            )
            return {"status": "ignored", "reason": f"not about project {project}"}
        if event.ignored is not None:
            return ignore(event.action, event.ignored)
        if trigger is None or watch is None:
            return ignore(event.action, "retraining is off")
        if event.action == START_TRAINING:
            trigger.request_run()
        else:
            watch.nudge()  # the count comes from Label Studio itself
        return {"status": "ok"}

    def ignore(action: str | None, reason: str) -> dict[str, Any]:
        logger.info("Ignored webhook %s: %s", action, reason)
        return {"status": "ignored", "reason": reason}

    return app
