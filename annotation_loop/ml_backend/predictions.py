"""Predictions for a batch of Label Studio tasks, in the ML backend protocol's shape."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, cast

from annotation_loop.errors import ConfigurationError
from annotation_loop.ml_backend.served_model import ServedModel
from annotation_loop.storage import ObjectStore

logger = logging.getLogger(__name__)

# A task's entry in `/predict`'s results is one prediction or a list of them; an empty list
# keeps the results aligned with the tasks while storing nothing, so Label Studio asks again
# later (an empty prediction would count as this version's prediction for good).
TaskResult = dict[str, Any] | list[dict[str, Any]]


def no_predictions(tasks: Sequence[Any]) -> list[TaskResult]:
    return [[] for _ in tasks]


def predict_tasks(
    served: ServedModel,
    tasks: Sequence[Mapping[str, Any]],
    store: ObjectStore | None,
    batch_size: int,
) -> list[TaskResult]:
    """One entry per task, in order: `{"result", "score", "model_version"}`, or no prediction
    for a task whose input is missing, unreadable or unusable.

    The whole batch goes through `task_type.predict` at once. `store` is where tasks' inputs
    live when the task type keeps them in the bucket (images); text task types never read it.
    """
    task_type = served.task_type
    if store is None and task_type.items_in_bucket:
        raise ConfigurationError(
            f"The ML backend serves {task_type.description}, whose inputs are in the bucket, "
            "but was started without one: start it with the bucket's settings"
        )
    refs: dict[str, str] = {}  # keyed by the task's position, which the results keep
    for position, task in enumerate(tasks):
        try:
            refs[str(position)] = task_type.input_ref(task["data"])
        except (KeyError, TypeError) as error:
            logger.warning("Task %s has no model input in its data (%s)", task.get("id"), error)
    inputs = task_type.load_inputs(cast(ObjectStore, store), refs.items())
    predictions, _ = task_type.predict(
        served.model, ((key, data) for key, data in inputs if data is not None), batch_size
    )
    by_key = {p.key: p for p in predictions}
    results: list[TaskResult] = []
    unpredicted = []
    for position, task in enumerate(tasks):
        key = str(position)
        if key not in by_key:
            results.append([])
            unpredicted.append(task.get("id"))
            continue
        prediction = by_key[key]
        results.append(
            {
                "result": task_type.result_for_target(prediction.target, refs[key]),
                "score": prediction.score,
                "model_version": served.model_version,
            }
        )
    if unpredicted:
        logger.warning(
            "%d of %d tasks got no prediction (no, unreadable or unusable input), e.g. task %s",
            len(unpredicted),
            len(tasks),
            unpredicted[0],
        )
    return results
