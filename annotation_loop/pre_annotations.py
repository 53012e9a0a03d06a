"""A batch's tasks -> the production model's pre-annotations, ordered for labelling."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from annotation_loop.active_learning import RankingConfig
from annotation_loop.queues import ranked_scores
from annotation_loop.storage import ObjectStore
from annotation_loop.sync import BatchTask
from annotation_loop.task_types import TaskType


class TaskPrediction(BaseModel):
    task_id: int
    result: list[dict[str, Any]]  # Label Studio result regions
    score: float  # the model's confidence, reassigned so that low scores are labelled first


@dataclass
class PredictedTasks:
    predictions: list[TaskPrediction]
    unreadable: list[BatchTask]  # corrupt or vanished items: no prediction


def predict_tasks(
    task_type: TaskType,
    model: Any,
    store: ObjectStore,
    tasks: Sequence[BatchTask],
    batch_size: int,
    ranking: RankingConfig,
) -> PredictedTasks:
    """Predicts every task in batches, its inputs read from the bucket concurrently while
    the model computes; the scores order the tasks by `ranking`, lowest first."""
    by_key = {str(task.task_id): task for task in tasks}
    inputs = task_type.load_inputs(store, ((key, t.input_ref) for key, t in by_key.items()))
    predictions, _ = task_type.predict(
        model, ((key, data) for key, data in inputs if data is not None), batch_size=batch_size
    )
    predicted = {p.key for p in predictions}
    return PredictedTasks(
        predictions=[
            TaskPrediction(
                task_id=int(p.key),
                result=task_type.result_for_target(p.target, by_key[p.key].input_ref),
                score=score,
            )
            for p, score in zip(predictions, ranked_scores(predictions, ranking), strict=True)
        ],
        unreadable=[task for key, task in by_key.items() if key not in predicted],
    )
