from typing import Annotated

from zenml import log_metadata, step
from zenml.logger import get_logger

from annotation_loop.configs import ProjectSpec
from annotation_loop.data.storage import ObjectStore
from annotation_loop.data.sync import SyncReport
from annotation_loop.labelstudio import PredictionIn
from annotation_loop.labelstudio.queues import LABELLING_QUEUE, publish_labelling_queue
from annotation_loop.learning.active_learning import RankingConfig
from annotation_loop.learning.pre_annotations import BatchPredictions, predict_tasks
from annotation_loop.task_types import get_task_type
from annotation_loop.zenml_integration.model_registry import (
    MODEL_ARTIFACT,
    label_studio_from_stack,
    load_artifact,
    prediction_model_version,
    production_version,
)
from materializers import BatchPredictionsMaterializer

logger = get_logger(__name__)


@step(output_materializers=BatchPredictionsMaterializer)
def predict_batch(
    model_name: str,
    project: ProjectSpec,
    batch_tasks: SyncReport,
    batch_size: int,
    active_learning: RankingConfig,
) -> Annotated[BatchPredictions, "batch_predictions"]:
    """Predicts, with the model's production version as it is when the step starts, the
    batch's tasks that lack its prediction; their scores order them for labelling by the
    `active_learning` strategy."""
    production = production_version(model_name)
    if production is None:
        logger.info(
            "No production model yet: %s is synced without pre-annotations. Label it in "
            "Label Studio, then run --train",
            batch_tasks.batch,
        )
        return BatchPredictions(project_id=batch_tasks.project_id, model_version=None)
    task_type = get_task_type(project.task)
    model_version = prediction_model_version(model_name, str(production.name))
    client = label_studio_from_stack()
    # The anchoring check's control tasks are shown to annotators without a pre-annotation.
    withheld = project.quality.withholds_pre_annotation
    wanted = [t.task_id for t in batch_tasks.tasks if not withheld(t.content_hash)]
    done = client.task_ids_with_prediction(batch_tasks.project_id, model_version, wanted)
    if len(done) == len(wanted):
        logger.info(
            "All %d tasks of %s have their %s prediction already (%d kept without one for "
            "the anchoring check): nothing to predict",
            len(done),
            batch_tasks.batch,
            model_version,
            len(batch_tasks.tasks) - len(wanted),
        )
        return BatchPredictions(
            project_id=batch_tasks.project_id,
            model_version=model_version,
            already_predicted=len(done),
        )
    predicted = predict_tasks(
        task_type,
        load_artifact(production, MODEL_ARTIFACT),
        ObjectStore(project.source),
        (t for t in batch_tasks.tasks if t.task_id not in done and not withheld(t.content_hash)),
        batch_size=batch_size,
        ranking=active_learning,
    )
    if predicted.unreadable:
        logger.warning(
            "%d items could not be read or used and got no prediction, e.g. %s",
            len(predicted.unreadable),
            predicted.unreadable[0].uri,
        )
    logger.info(
        "Predicted %d tasks of %s with %s (%d already had its prediction)",
        len(predicted.predictions),
        batch_tasks.batch,
        model_version,
        len(done),
    )
    return BatchPredictions(
        project_id=batch_tasks.project_id,
        model_version=model_version,
        strategy=active_learning.strategy,
        predictions=predicted.predictions,
        already_predicted=len(done),
        unreadable=[task.uri for task in predicted.unreadable],
    )


@step
def push_predictions(batch_predictions: BatchPredictions) -> Annotated[int, "pushed_predictions"]:
    """Uploads the predictions to Label Studio as pre-annotations, in bulk."""
    if batch_predictions.model_version is None or not batch_predictions.predictions:
        logger.info("No new pre-annotations to push")
        return 0
    client = label_studio_from_stack()
    version, predictions = batch_predictions.model_version, batch_predictions.predictions
    pushed = client.import_predictions(
        batch_predictions.project_id,
        (PredictionIn(p.task_id, p.result, p.score, version) for p in predictions),
        total=len(predictions),
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
