from dataclasses import asdict
from typing import Annotated

from PIL.Image import Image
from zenml import get_step_context, log_metadata, step
from zenml.logger import get_logger

from annotation_loop.learning.learning_curve import CurvePoint, StoppingRule, plot_learning_curve
from annotation_loop.learning.validation import ValidationReport
from annotation_loop.zenml_integration.model_registry import learning_curve

logger = get_logger(__name__)


@step
def record_learning_curve(
    validation: ValidationReport, stopping_rounds: int = 2, stopping_min_gain: float = 0.01
) -> Annotated[Image, "learning_curve"]:
    """Adds this run to the model's learning curve (labels so far vs validation score), and
    says on the model version whether the last rounds of labelling still paid off."""
    model = get_step_context().model
    metric = validation.metric
    points = [
        *learning_curve(model.name, metric, before_number=model.number),
        CurvePoint(str(model.version), validation.labelled_items, validation.score),
    ]
    stopped, advice = StoppingRule(stopping_rounds, stopping_min_gain).advice(points, metric)
    logger.info(advice)
    log_metadata(
        metadata={
            "learning_curve": {
                "points": [asdict(point) for point in points],
                "stopped_paying_off": stopped,
                "advice": advice,
            }
        },
        infer_model=True,
    )
    return plot_learning_curve(points, metric, advice)
