"""Interactive predictions: Label Studio's `/predict` with the annotator's regions in
`params.context.result` (sent through `/api/ml/<id>/interactive-annotating` when the backend
is used for interactive preannotations); the answer is one prediction for the one task,
which Label Studio hands to the editor as it is (`results[0]`)."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from statistics import fmean
from typing import Any, cast

from annotation_loop.data.storage import ObjectStore
from annotation_loop.ml_backend.predictions import TaskResult, check_store, input_ref_of
from annotation_loop.ml_backend.served_model import ServedModel
from annotation_loop.task_types.capabilities import RegionError, interactive_prediction_of

logger = logging.getLogger(__name__)


def interactive_regions(params: Mapping[str, Any] | None) -> list[Any] | None:
    """The annotator's regions if `/predict`'s `params` make it an interactive request (a
    `context` with a `result`), else None: Label Studio sends `context: null` otherwise."""
    context = (params or {}).get("context")
    if not isinstance(context, dict) or "result" not in context:
        return None
    regions = context["result"]
    return regions if isinstance(regions, list) else []


def predict_interactively(
    served: ServedModel,
    task: Mapping[str, Any],
    regions: list[Any],
    store: ObjectStore | None,
    max_input_chars: int,
) -> TaskResult:
    """The model's answer for each of `regions` of `task`, as one prediction (`result`,
    `score`: the answers' mean, `model_version`); no prediction when the task type answers
    no region, the task's input cannot be read, or no region could be answered. A region that
    cannot be used is skipped with a warning; the others are still answered."""
    started = time.monotonic()
    task_type, task_id = served.task_type, task.get("id")
    capability = interactive_prediction_of(task_type)
    if capability is None:
        logger.info(
            "Task %s gets no interactive prediction: %s (task type %r) answers no region "
            "(it has no predict_region)",
            task_id,
            task_type.description,
            task_type.name,
        )
        return []
    model_input = _load_input(served, task, store, max_input_chars)
    if model_input is None:
        return []
    answers = []
    for region in regions:
        if not isinstance(region, Mapping):
            logger.warning(
                "Skipped a region of task %s: %r is not a result object", task_id, region
            )
            continue
        try:
            answer = capability.predict_region(served.model, model_input, region)
        except RegionError as error:
            logger.warning("Skipped a region of task %s: %s", task_id, error)
            continue
        if answer is None:
            logger.info(
                "Skipped region %r of task %s: a %r region of %r, which %s does not answer",
                region.get("id"),
                task_id,
                region.get("type"),
                region.get("from_name"),
                task_type.description,
            )
            continue
        answers.append(answer)
    logger.info(
        "Answered %d of %d regions of task %s interactively with %s in %.0f ms",
        len(answers),
        len(regions),
        task_id,
        served.model_version,
        (time.monotonic() - started) * 1000,
    )
    if not answers:
        return []
    return {
        "result": answers,
        "score": fmean(float(answer.get("score", 0.0)) for answer in answers),
        "model_version": served.model_version,
    }


def _load_input(
    served: ServedModel, task: Mapping[str, Any], store: ObjectStore | None, max_input_chars: int
) -> Any | None:
    """The task's model input, as `TaskType.load_inputs` gives it; None (with the reason
    logged) when there is none to use."""
    task_type, task_id = served.task_type, task.get("id")
    check_store(task_type, store)
    try:
        ref = input_ref_of(task_type, task["data"], store)
    except (KeyError, TypeError) as error:
        logger.warning("Task %s has no model input in its data (%s)", task_id, error)
        return None
    if len(ref) > max_input_chars:
        logger.warning(
            "Task %s gets no interactive prediction: its input is over %d characters",
            task_id,
            max_input_chars,
        )
        return None
    # `check_store` made sure a task type that reads the store has one.
    ((_, model_input),) = task_type.load_inputs(cast(ObjectStore, store), [("task", ref)])
    if model_input is None:
        logger.warning("Task %s gets no interactive prediction: its input cannot be used", task_id)
    return model_input
