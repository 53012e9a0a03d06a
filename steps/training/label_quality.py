from typing import Annotated

from PIL.Image import Image
from zenml import log_metadata, step
from zenml.logger import get_logger

from annotation_loop.configs import ProjectSpec
from annotation_loop.learning.annotations import AnnotationSnapshot
from annotation_loop.quality.consensus import ConsensusMethod
from annotation_loop.quality.plots import plot_agreement
from annotation_loop.quality.report import measure_label_quality

logger = get_logger(__name__)


@step
def record_label_quality(
    snapshot: AnnotationSnapshot, project: ProjectSpec, consensus: ConsensusMethod
) -> Annotated[Image, "label_agreement"]:
    """Agreement between annotators on the overlap set, their reliability and the anchoring
    check, as the model version's `label_quality` metadata (`run.py quality` prints it)."""
    report = measure_label_quality(snapshot, project.quality, consensus)
    for line in report.lines():
        logger.info(line)
    log_metadata(metadata={"label_quality": report.as_metadata()}, infer_model=True)
    return plot_agreement(report.agreement)
