from typing import Annotated, Any

from PIL.Image import Image
from zenml import get_step_context, log_metadata, step
from zenml.logger import get_logger
from zenml.models import ModelVersionResponse

from annotation_loop.data.storage import DataSource
from annotation_loop.learning.annotations import AnnotationSnapshot
from annotation_loop.learning.training_data import load_examples
from annotation_loop.zenml_integration.model_registry import (
    MODEL_ARTIFACT,
    load_artifact,
    promote_if_better,
)

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
    type's metric; promotes the new version only if it is strictly better than production
    is when the stage is set (another run may have promoted a version meanwhile)."""
    task_type = snapshot.task_type
    metric = task_type.promotion_metric
    _, validation_items = snapshot.split(validation_fraction)
    examples = load_examples(task_type, source, validation_items)
    evaluation = task_type.evaluate(model, examples)
    candidate = evaluation.score(metric)

    def score_production(version: ModelVersionResponse) -> float:
        production_model = load_artifact(version, MODEL_ARTIFACT)
        return task_type.evaluate(production_model, examples).score(metric)

    # With no validation items there is nothing to compare: only a first model wins.
    model_version = get_step_context().model
    decision = promote_if_better(model_version, candidate if examples else None, score_production)
    production = decision.production
    compared = f"version {production.name}" if production else "none"
    if decision.production_score is not None:
        compared = f"{decision.production_score:.3f} ({compared})"
    logger.info(
        "Validation %s on %d items: %.3f (production %s): %s",
        metric,
        len(examples),
        candidate,
        compared,
        "promoted to production" if decision.promoted else "not promoted",
    )
    summary = {
        **evaluation.metrics,
        "metric": metric,
        "score": candidate,
        "labelled_items": len(snapshot.items),
        "production_version": production.name if production else None,
        f"production_{metric}": decision.production_score,
        "promoted": decision.promoted,
    }
    log_metadata(
        metadata={"validation": {k: v for k, v in summary.items() if v is not None}},
        infer_model=True,
    )
    return summary, evaluation.figure
