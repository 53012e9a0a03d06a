from typing import Annotated

from zenml import log_metadata, step
from zenml.logger import get_logger

from annotation_loop.model_registry import label_studio_from_stack
from annotation_loop.storage import DataSource, ObjectStore
from annotation_loop.sync import SyncReport, ensure_project, sync_batch_to_project

logger = get_logger(__name__)


@step
def sync_batch(
    source: DataSource, batch: str, project_name: str, labels: list[str]
) -> Annotated[SyncReport, "batch_tasks"]:
    """Creates Label Studio tasks for the batch's new objects; lists all of its tasks."""
    client = label_studio_from_stack()
    client.check()
    store = ObjectStore(source)
    project_id = ensure_project(client, store, project_name, labels)
    report = sync_batch_to_project(client, project_id, store, batch)
    logger.info(
        "Synced %s: %d objects, %d new tasks, %d already in project %r, %d non-images skipped",
        batch,
        report.listed,
        report.created,
        report.already_present,
        project_name,
        len(report.skipped_keys),
    )
    log_metadata(
        metadata={
            "batch": batch,
            "listed": report.listed,
            "created": report.created,
            "already_present": report.already_present,
            "skipped_non_images": len(report.skipped_keys),
            "project_url": client.project_url(project_id),
        }
    )
    return report
