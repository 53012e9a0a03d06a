from typing import Annotated

from zenml import log_metadata, step
from zenml.logger import get_logger
from zenml.materializers.pydantic_materializer import PydanticMaterializer

from annotation_loop.configs import ProjectSpec
from annotation_loop.data.batch_choice import BatchChoice
from annotation_loop.data.storage import ObjectStore
from annotation_loop.data.sync import SyncReport, choose_batch, ensure_project, import_batch
from annotation_loop.data.task_index import TaskIndex, refresh_task_index
from annotation_loop.task_types import get_task_type
from annotation_loop.zenml_integration.model_registry import (
    TASK_INDEX_ARTIFACT,
    label_studio_from_stack,
    latest_task_index,
)
from materializers import SyncReportMaterializer, TaskIndexMaterializer

logger = get_logger(__name__)


# Every output named, in the order declared: a dynamic pipeline gets a step's outputs in the
# order of its output configuration, which starts with the outputs named here.
@step(
    output_materializers={
        "batch_choice": PydanticMaterializer,
        TASK_INDEX_ARTIFACT: TaskIndexMaterializer,
    }
)
def choose_next_batch(
    project: ProjectSpec, batch: str | None, rerun: bool
) -> tuple[Annotated[BatchChoice, "batch_choice"], Annotated[TaskIndex, TASK_INDEX_ARTIFACT]]:
    """The batch to sync: `batch` if given, else batch_1 on a first run and with `rerun` the
    first batch the project holds no task of; and the project's task index, brought up to
    date once for the choice and the sync."""
    client = label_studio_from_stack()
    client.check()
    store = ObjectStore(project.source)
    batches = store.list_batches()  # first: a storage connection needs objects to exist
    task_type = get_task_type(project.task)
    project_id = ensure_project(client, store, project.project_name, project.labels, task_type)
    index = refresh_task_index(client, project_id, latest_task_index(client.url, project_id))
    chosen = choose_batch(store, batches, index.batches(), rerun, requested=batch)
    choice = BatchChoice(
        batch=chosen,
        project_id=project_id,
        reason=(
            f"Every batch under {store.source.dataset_uri} is synced already: add the next "
            "batch_N/ folder to continue"
            if chosen is None
            else f"Syncing {chosen} of {len(batches)} batches ({len(index)} tasks in the project)"
        ),
    )
    logger.info(choice.reason)
    log_metadata(metadata={"batch_choice": choice.model_dump()})
    return choice, index


@step(
    output_materializers={
        "batch_tasks": SyncReportMaterializer,
        TASK_INDEX_ARTIFACT: TaskIndexMaterializer,
    }
)
def sync_batch(
    project: ProjectSpec, choice: BatchChoice, index: TaskIndex
) -> tuple[Annotated[SyncReport, "batch_tasks"], Annotated[TaskIndex, TASK_INDEX_ARTIFACT]]:
    """Creates Label Studio tasks for the chosen batch's new items; lists all of its tasks,
    and stores the project's task index for the next sync."""
    assert choice.batch is not None, "the pipeline syncs only a chosen batch"
    client = label_studio_from_stack()
    report, index = import_batch(
        client,
        choice.project_id,
        ObjectStore(project.source),
        choice.batch,
        get_task_type(project.task),
        index,
    )
    # Every overlap task of the batch, not just the new ones: a sync cut off between the
    # import and this leaves tasks that the next sync of the batch must still cover.
    overlap = [
        task.task_id for task in report.tasks if project.quality.in_overlap(task.content_hash)
    ]
    if overlap:
        client.set_overlap(overlap, project.quality.overlap_annotators)
    logger.info(
        "Synced %s: %d items, %d new tasks, %d already in project %r, %d files skipped, "
        "%d problems; %d tasks are for %d annotators each",
        choice.batch,
        report.listed,
        report.created,
        report.already_present,
        project.project_name,
        len(report.skipped_keys),
        len(report.problems),
        len(overlap),
        project.quality.overlap_annotators,
    )
    log_metadata(
        metadata={
            "batch": choice.batch,
            "listed": report.listed,
            "created": report.created,
            "already_present": report.already_present,
            "skipped_files": len(report.skipped_keys),
            "problems": report.problems[:20],
            "overlap_tasks": len(overlap),
            "project_url": client.project_url(choice.project_id),
        }
    )
    return report, index
