from typing import Annotated, Any

from PIL.Image import Image
from zenml import get_step_context, log_metadata, step
from zenml.logger import get_logger

from annotation_loop.data.storage import DataSource
from annotation_loop.learning.annotations import AnnotationSnapshot
from annotation_loop.learning.training_data import validation_examples
from annotation_loop.learning.validation import ValidationReport
from annotation_loop.zenml_integration.model_registry import production_version, score_version

logger = get_logger(__name__)


@step
def evaluate_model(
    model: Any,  # Any: the task type's model, loaded by the materializer that stored it
    snapshot: AnnotationSnapshot,
    source: DataSource,
    validation_fraction: float,
) -> tuple[
    Annotated[ValidationReport, "validation_metrics"],
    Annotated[Image, "validation_plot"],
]:
    """Scores the new model and, on the same validation split, the production model, with
    the task type's metric and plot."""
    task_type = snapshot.task_type
    metric = task_type.promotion_metric
    examples = validation_examples(snapshot, source, validation_fraction)
    evaluation = task_type.evaluate(model, examples)
    model_name = get_step_context().model.name
    production = production_version(model_name)
    production_score = (
        score_version(production, task_type, examples, metric)
        if production is not None and examples
        else None
    )
    report = ValidationReport(
        metric=metric,
        score=evaluation.score(metric),
        labelled_items=len(snapshot.items),
        validation_items=len(examples),
        metrics=evaluation.metrics.model_dump(),
        production_version_id=str(production.id) if production else None,
        production_version=production.name if production else None,
        production_score=production_score,
    )
    logger.info(
        "Validation %s on %d items: %.3f (production %s of %s: %s)",
        metric,
        len(examples),
        report.score,
        report.production_version or "none",
        model_name,
        "-" if production_score is None else f"{production_score:.3f}",
    )
    # The watermark trusts only versions that carry this: their model was trained.
    log_metadata(
        metadata={
            "validation": {
                **evaluation.metrics.model_dump(),
                "metric": metric,
                "score": report.score,
                "labelled_items": report.labelled_items,
            }
        },
        infer_model=True,
    )
    return report, evaluation.figure
