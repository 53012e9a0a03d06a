"""The ML backend: the HTTP server Label Studio calls for pre-annotations, per its ML backend
protocol (as Label Studio 1.23's `ml/api_connector.py` speaks it).

- `GET /health`: `{"status": "UP", ...}`; Label Studio allows it 1 s.
- `POST /setup` `{"project": "<id>.<created timestamp>", "schema": <label config>, ...}`:
  `{"model_version": ...}`, or an HTTP error if the label config does not fit the model (Label
  Studio then refuses to connect the backend, showing only the status); it allows 3 s.
- `POST /predict` `{"tasks": [{"id", "data", ...}], "project", "label_config", "params"}`:
  `{"results": [...]}`, one entry per task, in order; it allows 100 s.
- `POST /webhook` `{"action": ..., ...}`: the project's webhook events, for retraining.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from annotation_loop.errors import LoopError
from annotation_loop.ml_backend.label_config import check_label_config
from annotation_loop.ml_backend.predictions import no_predictions, predict_tasks
from annotation_loop.ml_backend.served_model import ModelHolder
from annotation_loop.ml_backend.webhooks import START_TRAINING, read_event
from annotation_loop.retraining import RetrainingTrigger
from annotation_loop.storage import ObjectStore

logger = logging.getLogger(__name__)


class SetupRequest(BaseModel):
    project: str  # "<project id>.<project creation timestamp>"
    label_config: str = Field(alias="schema")


class PredictRequest(BaseModel):
    tasks: list[dict[str, Any]]
    project: str
    label_config: str


def project_id(project: str) -> str:
    return project.split(".", 1)[0]


def create_app(
    holder: ModelHolder,
    store: ObjectStore | None,
    trigger: RetrainingTrigger | None,
    batch_size: int = 32,
) -> FastAPI:
    """The backend serving `holder`'s model (inputs in `store`, if they live in a bucket),
    recording annotations on `trigger` (None: no retraining).

    While the app runs (its lifespan), the production model is loaded before the first
    request and the trigger ticks on its background thread.
    """

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await anyio.to_thread.run_sync(holder.current)
        if trigger is not None:
            trigger.start()
        try:
            yield
        finally:
            if trigger is not None:
                trigger.stop()

    app = FastAPI(title="annotation-loop ML backend", lifespan=lifespan)

    @app.get("/")
    @app.get("/health")
    def health() -> dict[str, Any]:
        served = holder.served
        return {
            "status": "UP",
            "model_class": "annotation_loop",
            "model_version": served.model_version if served else None,
            "retraining": asdict(trigger.status) if trigger else None,
        }

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

    @app.post("/predict")
    def predict(request: PredictRequest) -> dict[str, Any]:
        project = project_id(request.project)
        served = holder.current()
        if served is None:
            logger.info(
                "No production model yet: run --train (project %s gets no predictions)", project
            )
            return {"results": no_predictions(request.tasks)}
        reason = check_label_config(request.label_config, served.task_type, served.labels)
        if reason is not None:
            logger.warning("No predictions for project %s: %s", project, reason)
            return {"results": no_predictions(request.tasks)}
        try:
            results = predict_tasks(served, request.tasks, store, batch_size)
        except LoopError as error:
            logger.error("No predictions for project %s: %s", project, error)
            return {"results": no_predictions(request.tasks)}
        logger.info(
            "Predicted %d tasks of project %s with %s", len(results), project, served.model_version
        )
        return {"results": results}

    @app.post("/webhook")
    async def webhook(request: Request) -> dict[str, Any]:
        # Label Studio posts every project event here; none of them may fail.
        try:
            payload = await request.json()
        except ValueError:
            payload = None
        event = read_event(payload)
        if trigger is None or event.ignored is not None:
            reason = event.ignored or "retraining is off"
            logger.info("Ignored webhook %s: %s", event.action, reason)
            return {"status": "ignored", "reason": reason}
        if event.action == START_TRAINING:
            trigger.request_run()
        else:
            trigger.record(event.annotations)
            logger.info("Webhook %s: %d annotations recorded", event.action, event.annotations)
        return {"status": "ok"}

    return app
