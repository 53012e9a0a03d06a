from dataclasses import asdict
from typing import Annotated, Any

from zenml import get_step_context, log_metadata, step
from zenml.logger import get_logger

from annotation_loop.annotations import AnnotationSnapshot
from annotation_loop.errors import LoopError
from annotation_loop.model_registry import CLASSIFIER_ARTIFACT, load_artifact, production_version
from annotation_loop.storage import DataSource, ObjectStore
from annotation_loop.training_data import read_labelled_images
from annotation_loop.vision import ClassifierCheckpoint, TrainConfig, train_classifier
from materializers import ClassifierCheckpointMaterializer

logger = get_logger(__name__)


@step(output_materializers=ClassifierCheckpointMaterializer)
def train_model(
    snapshot: AnnotationSnapshot,
    source: DataSource,
    train_config: dict[str, Any],
    validation_fraction: float,
    continue_from_production: bool,
) -> Annotated[ClassifierCheckpoint, CLASSIFIER_ARTIFACT]:
    """Fine-tunes the classifier on the snapshot's training split."""
    train_items, _ = snapshot.split(validation_fraction)
    if not train_items:
        raise LoopError(
            f"No training examples among {len(snapshot.items)} labelled items: label more "
            "tasks in Label Studio, then run --train again"
        )
    examples = read_labelled_images(ObjectStore(source), train_items)
    init = None
    if continue_from_production:
        production = production_version(get_step_context().model.name)
        if production is None:
            logger.info("No production model yet: starting from the pretrained backbone")
        else:
            logger.info("Continuing from production model version %s", production.name)
            init = load_artifact(production, CLASSIFIER_ARTIFACT)
    config = TrainConfig(**train_config)
    checkpoint, report = train_classifier(examples, list(snapshot.labels), config, init=init)
    logger.info(
        "Trained on %d images (%d skipped) on %s at %.1f images/s",
        report.examples,
        len(report.skipped_keys),
        report.device,
        report.images_per_second,
    )
    log_metadata(
        metadata={
            "training": {**asdict(report), "skipped_keys": report.skipped_keys[:20]},
            "train_config": asdict(config),
            "initialised_from": "production" if init else "pretrained",
        },
        infer_model=True,
    )
    return checkpoint
