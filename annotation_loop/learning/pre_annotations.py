"""A batch's tasks -> the production model's pre-annotations, ordered for labelling."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import islice
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from annotation_loop.data.batch_tasks import BatchTask
from annotation_loop.data.storage import ObjectStore
from annotation_loop.data.task_predictions import TaskPrediction, TaskPredictions
from annotation_loop.labelstudio.queues import LabellingOrder
from annotation_loop.learning.active_learning import RankingConfig
from annotation_loop.task_types import TaskType

# Tasks predicted per round: only a round's inputs, predictions and embeddings are in
# memory at once; between rounds the reads and the model pause for a moment.
PREDICT_ROUND = 10_000


class BatchPredictions(BaseModel):
    """What inference hands to the upload."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    project_id: int
    model_version: str | None  # None: no production model yet, nothing predicted
    strategy: str = "random"  # how the scores order the tasks for labelling
    predictions: TaskPredictions = Field(default_factory=TaskPredictions)
    already_predicted: int = 0
    unreadable: list[str] = Field(default_factory=list)  # corrupt or vanished items


@dataclass
class PredictedTasks:
    predictions: TaskPredictions
    unreadable: list[BatchTask]  # corrupt or vanished items: no prediction


def predict_tasks(
    task_type: TaskType,
    model: Any,
    store: ObjectStore,
    tasks: Iterable[BatchTask],
    batch_size: int,
    ranking: RankingConfig,
) -> PredictedTasks:
    """Predicts every task in batches, its inputs read from the bucket concurrently while
    the model computes; the scores order the tasks by `ranking`, lowest first."""
    predictions = TaskPredictions()
    order = LabellingOrder(ranking)
    unreadable: list[BatchTask] = []
    stream = iter(tasks)
    while round_tasks := list(islice(stream, PREDICT_ROUND)):
        by_key = {str(task.task_id): task for task in round_tasks}
        inputs = task_type.load_inputs(store, ((key, t.input_ref) for key, t in by_key.items()))
        predicted, _ = task_type.predict(
            model, ((key, data) for key, data in inputs if data is not None), batch_size=batch_size
        )
        for prediction in predicted:
            order.add(prediction)
        predictions.add(
            TaskPrediction(
                task_id=int(p.key),
                result=task_type.result_for_target(p.target, by_key[p.key].input_ref),
                score=p.score,
            )
            for p in predicted
        )
        done = {p.key for p in predicted}
        unreadable += [task for key, task in by_key.items() if key not in done]
    predictions.rescore(order.scores())
    return PredictedTasks(predictions, unreadable)
