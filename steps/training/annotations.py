from typing import Annotated

from zenml import get_step_context, log_metadata, step
from zenml.logger import get_logger

from annotation_loop.learning.annotations import AnnotationSnapshot, merge_changes
from annotation_loop.task_types import get_task_type
from annotation_loop.zenml_integration.model_registry import (
    label_studio_from_stack,
    previous_snapshot,
)
from materializers import AnnotationSnapshotMaterializer

logger = get_logger(__name__)


@step(output_materializers=AnnotationSnapshotMaterializer)
def fetch_annotations(
    task: str, project_name: str, labels: list[str]
) -> Annotated[AnnotationSnapshot, "annotation_snapshot"]:
    """Merges the tasks changed since the watermark of the last snapshot a model was trained
    on into a new one; what it cannot use is skipped and reported."""
    client = label_studio_from_stack()
    client.check()
    project_id = client.get_or_create_project(
        project_name, get_task_type(task).label_config(labels)
    )
    model = get_step_context().model
    previous = previous_snapshot(model.name, project_id, task, labels, exclude_version_id=model.id)
    snapshot = merge_changes(
        previous, client.iter_tasks_updated_since(project_id, previous.watermark)
    )
    merge = snapshot.last_merge
    logger.info(
        "Fetched %d changed tasks since %s: %d labelled items now (+%d new, %d relabelled, "
        "%d removed; %d of these committed late); left out: %d skipped/cancelled, %d empty, "
        "%d tasks the loop did not create, %d malformed annotations",
        merge.fetched_tasks,
        previous.watermark or "the beginning",
        len(snapshot.items),
        merge.added,
        merge.relabelled,
        merge.removed,
        merge.late,
        merge.cancelled,
        merge.empty,
        merge.foreign,
        merge.malformed,
    )
    log_metadata(metadata={"labelled_items": len(snapshot.items)}, infer_model=True)
    return snapshot
