from typing import Annotated, Any

from zenml import get_step_context, log_metadata, step
from zenml.logger import get_logger

import materializers  # noqa: F401  (registers the model materializers ZenML picks by type)
from annotation_loop.data.storage import DataSource
from annotation_loop.labelstudio.queues import (
    REVIEW_QUEUE,
    publish_review_queue,
    review_model_version,
)
from annotation_loop.learning.annotations import AnnotationSnapshot
from annotation_loop.learning.label_review import ReviewConfig, recent_items, review_suggestions
from annotation_loop.learning.training_data import load_examples
from annotation_loop.zenml_integration.model_registry import (
    label_studio_from_stack,
    prediction_model_version,
)

logger = get_logger(__name__)


@step
def review_labels(
    model: Any,  # Any: the task type's model, loaded by the materializer that stored it
    snapshot: AnnotationSnapshot,
    source: DataSource,
    label_review: ReviewConfig,
) -> Annotated[int, "disputed_labels"]:
    """Flags labelled tasks whose label the calibrated out-of-fold model finds unlikely, at
    a threshold that keeps the expected share of correct labels flagged within
    `label_review.max_false_share`, in a Label Studio tab, each with the suggested label.
    Tasks a reviewer confirmed are never flagged."""
    task_type = snapshot.task_type
    items = recent_items(list(snapshot.items.values()), label_review)
    examples = load_examples(task_type, source, items)
    model_version = get_step_context().model
    version = review_model_version(
        prediction_model_version(model_version.name, str(model_version.version))
    )
    suggestions = review_suggestions(
        task_type,
        model,
        examples,
        {str(item.task_id): item for item in items},
        version,
        label_review,
    )
    if suggestions:
        client = label_studio_from_stack()
        client.import_predictions(snapshot.project_id, suggestions)
        publish_review_queue(client, snapshot.project_id, version)
    logger.info(
        "%d of %d labelled tasks checked have a disputed label%s",
        len(suggestions),
        len(examples),
        f": see the {REVIEW_QUEUE!r} tab" if suggestions else "",
    )
    log_metadata(
        metadata={
            "label_review": {
                "checked": len(examples),
                "confirmed": sum(item.confirmed for item in items),
                "disputed": len(suggestions),
            }
        },
        infer_model=True,
    )
    return len(suggestions)
