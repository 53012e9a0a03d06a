from typing import Annotated, Any

from PIL.Image import Image
from zenml import get_step_context, log_metadata, step
from zenml.enums import ModelStages
from zenml.logger import get_logger

from annotation_loop.annotations import AnnotationSnapshot
from annotation_loop.model_registry import (
    CLASSIFIER_ARTIFACT,
    PROMOTION_METRIC,
    load_artifact,
    production_version,
    should_promote,
)
from annotation_loop.storage import DataSource, ObjectStore
from annotation_loop.training_data import read_labelled_images
from annotation_loop.vision import ClassifierCheckpoint, evaluate_classifier, plot_confusion_matrix

logger = get_logger(__name__)


@step
def evaluate_and_promote(
    classifier: ClassifierCheckpoint,
    snapshot: AnnotationSnapshot,
    source: DataSource,
    validation_fraction: float,
) -> tuple[
    Annotated[dict[str, Any], "validation_metrics"],
    Annotated[Image, "confusion_matrix"],
]:
    """Scores the new and the production model on the same validation split; promotes
    the new version only if it is strictly better."""
    _, validation_items = snapshot.split(validation_fraction)
    examples = read_labelled_images(ObjectStore(source), validation_items)
    metrics = evaluate_classifier(classifier, examples)
    candidate = getattr(metrics, PROMOTION_METRIC)

    model = get_step_context().model
    production = production_version(model.name)
    production_score = None
    if production is not None:
        production_metrics = evaluate_classifier(
            load_artifact(production, CLASSIFIER_ARTIFACT), examples
        )
        production_score = getattr(production_metrics, PROMOTION_METRIC)
    # With no validation items yet there is nothing to compare: only a first model wins.
    promoted = should_promote(candidate, production_score) if examples else production is None
    if promoted:
        model.set_stage(ModelStages.PRODUCTION, force=True)
    logger.info(
        "Validation %s on %d items: %.3f (production %s): %s",
        PROMOTION_METRIC,
        len(examples),
        candidate,
        f"{production_score:.3f} (version {production.name})" if production else "none",
        "promoted to production" if promoted else "not promoted",
    )
    summary = {
        **metrics.to_metadata(),
        "labelled_items": len(snapshot.items),
        "production_version": production.name if production else None,
        f"production_{PROMOTION_METRIC}": production_score,
        "promoted": promoted,
    }
    log_metadata(
        metadata={"validation": {k: v for k, v in summary.items() if v is not None}},
        infer_model=True,
    )
    return summary, plot_confusion_matrix(metrics)
