from typing import Annotated, Any

from pydantic import BaseModel
from zenml import get_step_context, log_metadata, step
from zenml.exceptions import StepContextError
from zenml.logger import get_logger

import materializers  # noqa: F401  (registers the model materializers ZenML picks by type)
from annotation_loop.active_learning import RankingConfig
from annotation_loop.labelstudio import PredictionIn
from annotation_loop.model_registry import (
    MODEL_ARTIFACT,
    label_studio_from_stack,
    load_artifact,
    prediction_model_version,
)
from annotation_loop.queues import LABELLING_QUEUE, publish_labelling_queue, ranked_scores
from annotation_loop.storage import DataSource, ObjectStore
from annotation_loop.sync import SyncReport
from annotation_loop.task_types import get_task_type

logger = get_logger(__name__)


class TaskPrediction(BaseModel):
    task_id: int
    result: list[dict[str, Any]]  # Label Studio result regions
    score: float  # the model's confidence, reassigned so that low scores are labelled first


class BatchPredictions(BaseModel):
    project_id: int
    model_version: str | None  # None: no production model yet, nothing predicted
    strategy: str = "random"  # how the scores order the tasks for labelling
    predictions: list[TaskPrediction] = []
    already_predicted: int = 0
    unreadable: list[str] = []  # corrupt or vanished items


@step
def predict_batch(
    task: str,
    batch_tasks: SyncReport,
    source: DataSource,
    batch_size: int,
    active_learning: dict[str, Any],
) -> Annotated[BatchPredictions, "batch_predictions"]:
    """Predicts, with the production model, the batch's tasks that lack its prediction; their
    scores order them for labelling by the `active_learning` strategy (RankingConfig)."""
    try:
        model = get_step_context().model
    except StepContextError:
        logger.info(
            "No production model yet: %s is synced without pre-annotations. Label it in "
            "Label Studio, then run --train",
            batch_tasks.batch,
        )
        return BatchPredictions(project_id=batch_tasks.project_id, model_version=None)
    task_type = get_task_type(task)
    model_version = prediction_model_version(model.name, str(model.version))
    client = label_studio_from_stack()
    done = client.task_ids_with_prediction(
        batch_tasks.project_id, model_version, [t.task_id for t in batch_tasks.tasks]
    )
    todo = {str(t.task_id): t for t in batch_tasks.tasks if t.task_id not in done}
    inputs = task_type.load_inputs(ObjectStore(source), ((k, t.input_ref) for k, t in todo.items()))
    predictions, _ = task_type.predict(
        load_artifact(model, MODEL_ARTIFACT),
        ((key, data) for key, data in inputs if data is not None),
        batch_size=batch_size,
    )
    unreadable = sorted(set(todo) - {p.key for p in predictions}, key=int)
    if unreadable:
        logger.warning(
            "%d items could not be read or used and got no prediction, e.g. %s",
            len(unreadable),
            todo[unreadable[0]].uri,
        )
    logger.info(
        "Predicted %d tasks of %s with %s (%d already had its prediction)",
        len(predictions),
        batch_tasks.batch,
        model_version,
        len(done),
    )
    ranking = RankingConfig(**active_learning)
    scores = ranked_scores(predictions, ranking)
    return BatchPredictions(
        project_id=batch_tasks.project_id,
        model_version=model_version,
        strategy=ranking.strategy,
        predictions=[
            TaskPrediction(
                task_id=int(p.key),
                result=task_type.result_for_target(p.target, todo[p.key].input_ref),
                score=score,
            )
            for p, score in zip(predictions, scores, strict=True)
        ],
        already_predicted=len(done),
        unreadable=[todo[key].uri for key in unreadable],
    )


@step
def push_predictions(batch_predictions: BatchPredictions) -> Annotated[int, "pushed_predictions"]:
    """Uploads the predictions to Label Studio as pre-annotations, in bulk."""
    if batch_predictions.model_version is None or not batch_predictions.predictions:
        return 0
    client = label_studio_from_stack()
    pushed = client.import_predictions(
        batch_predictions.project_id,
        [
            PredictionIn(
                task_id=p.task_id,
                result=p.result,
                score=p.score,
                model_version=batch_predictions.model_version,
            )
            for p in batch_predictions.predictions
        ],
    )
    publish_labelling_queue(client, batch_predictions.project_id, batch_predictions.model_version)
    logger.info(
        "Pushed %d pre-annotations (%s), ordered for labelling by %s: the project's labelling "
        "stream and its %r tab show the lowest scores first",
        pushed,
        batch_predictions.model_version,
        batch_predictions.strategy,
        LABELLING_QUEUE,
    )
    log_metadata(
        metadata={
            "pushed_predictions": pushed,
            "model_version": batch_predictions.model_version,
            "strategy": batch_predictions.strategy,
        }
    )
    return pushed
