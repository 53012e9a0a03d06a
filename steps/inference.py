from typing import Annotated

from pydantic import BaseModel
from zenml import get_step_context, log_metadata, step
from zenml.exceptions import StepContextError
from zenml.logger import get_logger

from annotation_loop.image_classification import result_for_label
from annotation_loop.labelstudio import PredictionIn
from annotation_loop.model_registry import (
    CLASSIFIER_ARTIFACT,
    label_studio_from_stack,
    load_artifact,
    prediction_model_version,
)
from annotation_loop.storage import DataSource, ObjectStore
from annotation_loop.sync import SyncReport
from annotation_loop.vision import predict_images

logger = get_logger(__name__)


class TaskPrediction(BaseModel):
    task_id: int
    label: str
    score: float


class BatchPredictions(BaseModel):
    project_id: int
    model_version: str | None  # None: no production model yet, nothing predicted
    predictions: list[TaskPrediction] = []
    already_predicted: int = 0
    unreadable: list[str] = []  # corrupt or vanished objects


@step
def predict_batch(
    batch_tasks: SyncReport, source: DataSource, batch_size: int
) -> Annotated[BatchPredictions, "batch_predictions"]:
    """Predicts, with the production model, the batch's tasks that lack its prediction."""
    try:
        model = get_step_context().model
    except StepContextError:
        logger.info(
            "No production model yet: %s is synced without pre-annotations. Label it in "
            "Label Studio, then run --train",
            batch_tasks.batch,
        )
        return BatchPredictions(project_id=batch_tasks.project_id, model_version=None)
    model_version = prediction_model_version(model.name, str(model.version))
    client = label_studio_from_stack()
    done = client.task_ids_with_prediction(
        batch_tasks.project_id, model_version, [t.task_id for t in batch_tasks.tasks]
    )
    todo = [task for task in batch_tasks.tasks if task.task_id not in done]
    task_by_uri = {task.uri: task.task_id for task in todo}
    checkpoint = load_artifact(model, CLASSIFIER_ARTIFACT)
    store = ObjectStore(source)
    readable = ((uri, data) for uri, data in store.read_many(task_by_uri) if data is not None)
    predictions, _ = predict_images(checkpoint, readable, batch_size=batch_size)
    unreadable = sorted(set(task_by_uri) - {p.key for p in predictions})
    if unreadable:
        logger.warning(
            "%d objects could not be read or decoded and got no prediction, e.g. %s",
            len(unreadable),
            unreadable[0],
        )
    logger.info(
        "Predicted %d tasks of %s with %s (%d already had its prediction)",
        len(predictions),
        batch_tasks.batch,
        model_version,
        len(done),
    )
    return BatchPredictions(
        project_id=batch_tasks.project_id,
        model_version=model_version,
        predictions=[
            TaskPrediction(task_id=task_by_uri[p.key], label=p.label, score=p.score)
            for p in predictions
        ],
        already_predicted=len(done),
        unreadable=unreadable,
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
                result=result_for_label(p.label),
                score=p.score,
                model_version=batch_predictions.model_version,
            )
            for p in batch_predictions.predictions
        ],
    )
    logger.info("Pushed %d pre-annotations (%s)", pushed, batch_predictions.model_version)
    log_metadata(
        metadata={"pushed_predictions": pushed, "model_version": batch_predictions.model_version}
    )
    return pushed
