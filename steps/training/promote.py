from typing import Annotated

from zenml import get_step_context, log_metadata, step
from zenml.logger import get_logger
from zenml.models import ModelVersionResponse

import materializers  # noqa: F401  (registers the model materializers ZenML picks by type)
from annotation_loop.data.storage import DataSource
from annotation_loop.learning.annotations import AnnotationSnapshot
from annotation_loop.learning.training_data import validation_examples
from annotation_loop.learning.validation import PromotionReport, ValidationReport
from annotation_loop.zenml_integration.model_registry import promote_if_better, score_version

logger = get_logger(__name__)


@step
def promote_model(
    validation: ValidationReport,
    snapshot: AnnotationSnapshot,
    source: DataSource,
    validation_fraction: float,
) -> Annotated[PromotionReport, "promotion"]:
    """Makes the new version production if it is strictly better than production is when
    the stage is set: if another run promoted a version since the evaluation, that one is
    scored on the same validation split and compared instead."""

    def score_production(version: ModelVersionResponse) -> float:
        if str(version.id) == validation.production_version_id:
            assert validation.production_score is not None
            return validation.production_score
        examples = validation_examples(snapshot, source, validation_fraction)
        return score_version(version, snapshot.task_type, examples, validation.metric)

    # With no validation items there is nothing to compare: only a first model wins.
    candidate = validation.score if validation.validation_items else None
    decision = promote_if_better(get_step_context().model, candidate, score_production)
    report = PromotionReport(
        promoted=decision.promoted,
        production_version=decision.production.name if decision.production else None,
        production_score=decision.production_score,
    )
    compared = report.production_version or "none"
    if report.production_score is not None:
        compared = f"{report.production_score:.3f} (version {compared})"
    logger.info(
        "Validation %s %.3f, production %s: %s",
        validation.metric,
        validation.score,
        compared,
        "promoted to production" if report.promoted else "not promoted",
    )
    log_metadata(metadata={"promotion": report.model_dump()}, infer_model=True)
    return report
