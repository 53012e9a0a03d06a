from typing import Annotated, Any

from zenml import get_step_context, link_artifact_to_model, log_metadata, step
from zenml.logger import get_logger

import materializers  # noqa: F401  (registers the model materializers ZenML picks by type)
from annotation_loop.configs import TrainConfigValues
from annotation_loop.data.storage import DataSource
from annotation_loop.errors import LoopError
from annotation_loop.learning.annotations import AnnotationSnapshot
from annotation_loop.learning.training_data import load_examples
from annotation_loop.zenml_integration.model_registry import (
    MODEL_ARTIFACT,
    load_artifact,
    production_version,
)

logger = get_logger(__name__)


@step
def train_model(
    snapshot: AnnotationSnapshot,
    source: DataSource,
    train_config: TrainConfigValues,
    validation_fraction: float,
    continue_from_production: bool,
) -> Annotated[Any, MODEL_ARTIFACT]:  # Any: ZenML picks the task type's materializer by value
    """Fine-tunes the task type's model on the snapshot's training split; the snapshot joins
    the model version, so the next run fetches only what changed after it."""
    context = get_step_context()
    link_artifact_to_model(artifact_version=context.inputs["snapshot"][0], model=context.model)
    task_type = snapshot.task_type
    train_items, _ = snapshot.split(validation_fraction)
    if not train_items:
        raise LoopError(
            f"No training examples among {len(snapshot.items)} labelled items: label more "
            "tasks in Label Studio, then run --train again"
        )
    examples = load_examples(task_type, source, train_items)
    init = None
    if continue_from_production:
        production = production_version(context.model.name)
        if production is None:
            logger.info("No production model yet: starting from the pretrained model")
        else:
            logger.info("Continuing from production model version %s", production.name)
            init = load_artifact(production, MODEL_ARTIFACT)
    model, report = task_type.train(examples, snapshot.labels, train_config, init)
    logger.info(
        "Trained the %s model on %d items on %s at %.1f items/s",
        task_type.description,
        report["examples"],
        report["device"],
        report["items_per_second"],
    )
    log_metadata(
        metadata={
            "training": report,
            # Labelled items whose input could not be read (each logged with its reason).
            "skipped_unreadable_items": len(train_items) - len(examples),
            "train_config": train_config,
            "initialised_from": "production" if init else "pretrained",
        },
        infer_model=True,
    )
    return model
