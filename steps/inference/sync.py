from typing import Annotated

from zenml import log_metadata, step
from zenml.logger import get_logger

from annotation_loop.data.storage import DataSource, ObjectStore
from annotation_loop.data.sync import SyncReport, ensure_project, sync_batch_to_project
from annotation_loop.data.task_index import TaskIndex
from annotation_loop.task_types import get_task_type
from annotation_loop.zenml_integration.model_registry import (
    TASK_INDEX_ARTIFACT,
    label_studio_from_stack,
    latest_task_index,
)
from materializers import SyncReportMaterializer, TaskIndexMaterializer

logger = get_logger(__name__)


@step(
    output_materializers={
        "batch_tasks": SyncReportMaterializer,
        TASK_INDEX_ARTIFACT: TaskIndexMaterializer,
    }
)
def sync_batch(
    task: str, source: DataSource, batch: str, project_name: str, labels: list[str]
) -> tuple[Annotated[SyncReport, "batch_tasks"], Annotated[TaskIndex, TASK_INDEX_ARTIFACT]]:
    """Creates Label Studio tasks for the batch's new items; lists all of its tasks, and
    stores the project's task index for the next sync."""
    task_type = get_task_type(task)
    client = label_studio_from_stack()
    client.check()
    store = ObjectStore(source)
    project_id = ensure_project(client, store, project_name, labels, task_type)
    report, index = sync_batch_to_project(
        client, project_id, store, batch, task_type, latest_task_index(client.url, project_id)
    )
    logger.info(
        "Synced %s: %d items, %d new tasks, %d already in project %r, %d files skipped, "
        "%d problems",
        batch,
        report.listed,
        report.created,
        report.already_present,
        project_name,
        len(report.skipped_keys),
        len(report.problems),
    )
    log_metadata(
        metadata={
            "batch": batch,
            "listed": report.listed,
            "created": report.created,
            "already_present": report.already_present,
            "skipped_files": len(report.skipped_keys),
            "problems": report.problems[:20],
            "project_url": client.project_url(project_id),
        }
    )
    return report, index
