from typing import Annotated, Any

from PIL.Image import Image
from zenml import get_step_context, log_metadata, step
from zenml.enums import ModelStages
from zenml.logger import get_logger

from annotation_loop.annotations import AnnotationSnapshot
from annotation_loop.model_registry import (
    MODEL_ARTIFACT,
    load_artifact,
    production_version,
    should_promote,
)
from annotation_loop.storage import DataSource
from annotation_loop.training_data import load_examples

logger = get_logger(__name__)


@step
def evaluate_and_promote(
    model: Any,
    snapshot: AnnotationSnapshot,
    source: DataSource,
    validation_fraction: float,
) -> tuple[
    Annotated[dict[str, Any], "validation_metrics"],
    Annotated[Image, "validation_plot"],
]:
    """Scores the new and the production model on the same validation split, with the task
    type's metric; promotes the new version only if it is strictly better."""
    task_type = snapshot.task_type
    metric = task_type.promotion_metric
    _, validation_items = snapshot.split(validation_fraction)
    examples = load_examples(task_type, source, validation_items)
    evaluation = task_type.evaluate(model, examples)
    candidate = evaluation.score(metric)

    model_version = get_step_context().model
    production = production_version(model_version.name)
    production_score = None
    if production is not None:
        production_model = load_artifact(production, MODEL_ARTIFACT)
        production_score = task_type.evaluate(production_model, examples).score(metric)
    # With no validation items yet there is nothing to compare: only a first model wins.
    promoted = should_promote(candidate, production_score) if examples else production is None
    if promoted:
        model_version.set_stage(ModelStages.PRODUCTION, force=True)
    logger.info(
        "Validation %s on %d items: %.3f (production %s): %s",
        metric,
        len(examples),
        candidate,
        f"{production_score:.3f} (version {production.name})" if production else "none",
        "promoted to production" if promoted else "not promoted",
    )
    summary = {
        **evaluation.metrics,
        "metric": metric,
        "score": candidate,
        "labelled_items": len(snapshot.items),
        "production_version": production.name if production else None,
        f"production_{metric}": production_score,
        "promoted": promoted,
    }
    log_metadata(
        metadata={"validation": {k: v for k, v in summary.items() if v is not None}},
        infer_model=True,
    )
    return summary, evaluation.figure
