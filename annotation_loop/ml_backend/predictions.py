"""Predictions for a batch of Label Studio tasks, in the ML backend protocol's shape."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

from annotation_loop.data.storage import ObjectStore
from annotation_loop.errors import ConfigurationError
from annotation_loop.ml_backend.served_model import ServedModel
from annotation_loop.ml_backend.uploads import StoreWithUploads
from annotation_loop.task_types.base import TaskType

logger = logging.getLogger(__name__)

# A task's entry in `/predict`'s results is one prediction or a list of them; an empty list
# keeps the results aligned with the tasks while storing nothing, so Label Studio asks again
# later (an empty prediction would count as this version's prediction for good).
TaskResult = dict[str, Any] | list[dict[str, Any]]


def no_predictions(tasks: Sequence[Any]) -> list[TaskResult]:
    return [[] for _ in tasks]


def check_store(task_type: TaskType, store: ObjectStore | None) -> None:
    """Raises `ConfigurationError` if `task_type`'s inputs are in a bucket and there is none."""
    if store is None and task_type.items_in_bucket:
        raise ConfigurationError(
            f"The ML backend serves {task_type.description}, whose inputs are in the "
            "bucket, but was started without one: start it with the bucket's settings"
        )


def input_ref_of(task_type: TaskType, data: Mapping[str, Any], store: ObjectStore | None) -> str:
    """The task's model input reference: the task type's own (`TaskType.input_ref`), or for
    a task made by uploading a file to Label Studio, which has no bucket `uri`, that file's
    URL, when `store` reads uploads. Raises `KeyError` when the data has neither."""
    try:
        return task_type.input_ref(data)
    except KeyError:
        upload = (
            store.upload_ref(data)
            if task_type.items_in_bucket and isinstance(store, StoreWithUploads)
            else None
        )
        if upload is None:
            raise
        return upload


def predict_tasks(
    served: ServedModel,
    tasks: Sequence[Mapping[str, Any]],
    store: ObjectStore | None,
    batch_size: int,
    *,
    max_input_chars: int | None = None,
    deadline: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> list[TaskResult]:
    """One entry per task, in order: `{"result", "score", "model_version"}`, or no prediction
    for a task whose input is missing, unreadable, unusable or longer than `max_input_chars`
    (a text, or an image's URI).

    Without a `deadline` the whole batch goes through `task_type.predict` at once; with one
    (a `clock()` time), `batch_size` tasks at a time until it passes, and the tasks not
    reached by then get no prediction. `store` is where tasks' inputs live when the task type
    keeps them in the bucket (images), or in Label Studio for uploaded files (a
    `StoreWithUploads`); text task types never read it.
    """
    check_store(served.task_type, store)
    refs: dict[int, str] = {}  # by the task's position, which the results keep
    too_long = []
    for position, task in enumerate(tasks):
        try:
            ref = input_ref_of(served.task_type, task["data"], store)
        except (KeyError, TypeError) as error:
            logger.warning("Task %s has no model input in its data (%s)", task.get("id"), error)
            continue
        if max_input_chars is not None and len(ref) > max_input_chars:
            too_long.append(task.get("id"))
        else:
            refs[position] = ref
    if too_long:
        logger.warning(
            "%d tasks get no prediction: their input is over %d characters, e.g. task %s",
            len(too_long),
            max_input_chars,
            too_long[0],
        )
    results = no_predictions(tasks)
    unusable = []
    positions = sorted(refs)
    step = batch_size if deadline is not None else max(len(positions), 1)
    for start in range(0, len(positions), step):
        if deadline is not None and clock() >= deadline:
            left = positions[start:]
            logger.warning(
                "Deadline: %d of %d tasks left without a prediction, e.g. task %s (Label "
                "Studio asks for them again later)",
                len(left),
                len(tasks),
                tasks[left[0]].get("id"),
            )
            break
        chunk = {p: refs[p] for p in positions[start : start + step]}
        predicted = _predict(served, chunk, store, batch_size)
        for position, result in predicted.items():
            results[position] = result
        unusable += [tasks[p].get("id") for p in chunk if p not in predicted]
    if unusable:
        logger.warning(
            "%d of %d tasks got no prediction (unreadable or unusable input), e.g. task %s",
            len(unusable),
            len(tasks),
            unusable[0],
        )
    return results


def _predict(
    served: ServedModel, refs: Mapping[int, str], store: ObjectStore | None, batch_size: int
) -> dict[int, TaskResult]:
    """The predictions of the inputs `refs` names, by task position; none for an input that
    cannot be read or used."""
    task_type = served.task_type
    keyed = {str(position): ref for position, ref in refs.items()}
    inputs = task_type.load_inputs(cast(ObjectStore, store), keyed.items())
    predictions, _ = task_type.predict(
        served.model, ((key, data) for key, data in inputs if data is not None), batch_size
    )
    return {
        int(p.key): {
            "result": task_type.result_for_target(p.target, keyed[p.key]),
            "score": p.score,
            "model_version": served.model_version,
        }
        for p in predictions
    }
