"""Bucket -> Label Studio: the project, its source storage, and one task per new item.

Identity is the item's content hash (an image's from the listing, a text's from the text),
so re-running a sync adds nothing and an item moved to another batch is not imported twice.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from tqdm import tqdm

from annotation_loop.clouds import cloud_of
from annotation_loop.clouds.cors import warn_if_cors_missing
from annotation_loop.data.batch_tasks import BatchTasks
from annotation_loop.data.read_ahead import read_ahead
from annotation_loop.data.storage import DataSource, ObjectStore
from annotation_loop.data.task_index import TaskIndex, refresh_task_index
from annotation_loop.errors import StorageError
from annotation_loop.labelstudio import LabelStudioClient, TaskRef
from annotation_loop.settings import Settings
from annotation_loop.task_types import ItemListing, SourceItem, TaskType

logger = logging.getLogger(__name__)

# Tasks per import request: Label Studio imports one big request ~15% faster than the same
# tasks in 10k requests. 50k image tasks are ~7 MB; long texts are cut into more requests,
# each within the client's IMPORT_MAX_BYTES, far below Label Studio's request limit.
IMPORT_CHUNK = 50_000
# Listing pages (up to 1,000 items each) that wait, with their task data, while a chunk is
# imported: ~1.3 KB an item, so this bounds a sync's memory.
PAGES_AHEAD = 10


class SyncReport(BaseModel):
    """What a sync did; also the inference pipeline's list of the batch's tasks."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    project_id: int
    batch: str
    listed: int
    created: int
    already_present: int
    skipped_keys: list[str] = Field(default_factory=list)  # files the task type does not read
    problems: list[str] = Field(default_factory=list)  # e.g. empty texts, bad rows
    tasks: BatchTasks = Field(default_factory=BatchTasks)  # every task of the batch


def ensure_project(
    client: LabelStudioClient,
    store: ObjectStore,
    title: str,
    labels: Sequence[str],
    task_type: TaskType,
    settings: Settings | None = None,
) -> int:
    """Gets or creates the project; connects the data source when annotators need it to see
    the items (images stay in the bucket; texts travel inside the tasks). `settings` hold
    Label Studio's credentials for it (see `connect_source_storage`)."""
    project_id = client.get_or_create_project(title, task_type.label_config(labels))
    if task_type.items_in_bucket:
        connect_source_storage(client, project_id, store.source, settings)
    return project_id


@functools.cache  # once per process and warning
def _warn_write_keys(warning: str) -> None:
    logger.warning("%s", warning)


def connect_source_storage(
    client: LabelStudioClient,
    project_id: int,
    source: DataSource,
    settings: Settings | None = None,
) -> None:
    """Connects the dataset's bucket prefix so Label Studio resolves the tasks' URIs.

    Label Studio gets its own credentials (it presigns URLs for annotators' browsers) from
    `settings`: its read-only LOOP_LABEL_STUDIO_* ones when they are set, else the loop's,
    with a warning on a real cloud, since those can write and delete. None: this process's
    settings (`Settings()`, from its environment, as in a pipeline step on a remote
    orchestrator). A storage Label Studio already has is reused as it is, credentials
    included.
    """
    if settings is None:
        settings = Settings.from_environment()
    connection = cloud_of(source.root_uri).label_studio_source(source, settings)
    if connection.storage is None:
        # Tasks still work for the loop; only annotators' previews need the storage.
        logger.warning(
            "%s: the source storage is not connected, so annotators will not see images until "
            "you add it in Label Studio (project Settings > Cloud Storage)",
            connection.problem,
        )
        return
    if connection.write_keys_warning:
        _warn_write_keys(connection.write_keys_warning)
    connection.storage.connect(client, project_id)
    if connection.check_cors:
        warn_if_cors_missing(source, settings)


def choose_batch(
    store: ObjectStore,
    batches: list[str],
    synced: set[str],
    rerun: bool,
    requested: str | None = None,
) -> str | None:
    """The `requested` batch (synced again if it was: a sync adds only what is missing);
    else `batch_1` for a first run, and with `rerun` the first batch not synced yet (None:
    all are)."""
    if not batches:
        raise StorageError(
            f"No batch_N/ folders under {store.source.dataset_uri}: put images in "
            f"{store.source.dataset_uri}/batch_1/ (or run the demo to seed it)"
        )
    if requested is not None:
        if requested not in batches:
            raise StorageError(
                f"No {requested}/ under {store.source.dataset_uri}: choose one of "
                f"{', '.join(batches[:10])}" + (", ..." if len(batches) > 10 else "")
            )
        return requested
    if not rerun:
        return batches[0]
    return next((batch for batch in batches if batch not in synced), None)


@dataclass
class _BatchScan:
    """The items of a batch seen so far: the batch's tasks, found or still to be created,
    and per listing page the items the project lacks, with their task data.

    Tasks and index are on disk, and a new item's task data is dropped once its task is
    created, so a sync's memory does not grow with the batch or the project.
    """

    task_type: TaskType
    store: ObjectStore
    index: TaskIndex
    listed: int = 0
    skipped: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    tasks: BatchTasks = field(default_factory=BatchTasks)

    def new_items(
        self, pages: Iterator[ItemListing], progress: tqdm[Any]
    ) -> Iterator[list[tuple[SourceItem, dict[str, Any]]]]:
        """Per page, its items whose content is not in the project yet, with their task data
        (the same content twice in a batch is one task)."""
        for page in pages:
            self.listed += len(page.items)
            self.skipped += page.skipped
            self.problems += page.problems
            first: dict[str, SourceItem] = {}
            for item in page.items:
                first.setdefault(item.content_hash, item)
            unseen = self.tasks.unseen(list(first))
            present = self.index.find(unseen)
            new: list[tuple[SourceItem, dict[str, Any]]] = []
            rows: list[tuple[int | None, str, str, str]] = []
            for content_hash in unseen:
                item = first[content_hash]
                data = self.task_type.task_data(item, self.store)
                task = present.get(content_hash)
                input_ref = self.task_type.input_ref(data)
                rows.append((None if task is None else task.id, item.uri, content_hash, input_ref))
                if task is None:
                    new.append((item, data))
            self.tasks.add(rows)
            progress.update(len(page.items))
            yield new


def sync_batch_to_project(
    client: LabelStudioClient,
    project_id: int,
    store: ObjectStore,
    batch: str,
    task_type: TaskType,
    previous_index: TaskIndex | None = None,
) -> tuple[SyncReport, TaskIndex]:
    """Creates one task per item of `batch` whose content the project does not hold yet;
    returns the report and the project's task index, brought up to date from
    `previous_index` (the last sync's)."""
    index = refresh_task_index(client, project_id, previous_index)
    return import_batch(client, project_id, store, batch, task_type, index)


def import_batch(
    client: LabelStudioClient,
    project_id: int,
    store: ObjectStore,
    batch: str,
    task_type: TaskType,
    index: TaskIndex,
) -> tuple[SyncReport, TaskIndex]:
    """`sync_batch_to_project` with an `index` already brought up to date (refresh_task_index)
    by the caller, which chose the batch from it; `index` is extended with the new tasks."""
    scan = _BatchScan(task_type, store, index)

    def record(imported_items: list[tuple[str, str]], task_ids: list[int]) -> None:
        index.extend(
            TaskRef(id=task_id, content_hash=content_hash, uri=uri, batch=batch)
            for (content_hash, uri), task_id in zip(imported_items, task_ids, strict=True)
        )
        scan.tasks.assign(
            (content_hash, task_id)
            for (content_hash, _), task_id in zip(imported_items, task_ids, strict=True)
        )

    created = 0
    # The last chunk's (content hash, uri) and task ids, recorded while the next one imports;
    # its task data is dropped as soon as Label Studio took it.
    imported: tuple[list[tuple[str, str]], list[int]] | None = None
    with (
        tqdm(desc=f"Sync {batch}", unit="items") as progress,
        ThreadPoolExecutor(1, thread_name_prefix="import") as importer,
    ):
        # Listing and task data run ahead in a thread while a chunk is imported; what they
        # produced meanwhile is imported next, as one bigger chunk. Label Studio's import
        # is the bottleneck, so a chunk's bookkeeping is done while the next one imports.
        listing = scan.new_items(task_type.iter_items(store, batch), progress)
        for pages in read_ahead(listing, limit=PAGES_AHEAD):
            new_tasks = [new for page in pages for new in page]
            if not new_tasks:
                continue
            importing = importer.submit(
                client.import_tasks,
                project_id,
                [data for _, data in new_tasks],
                chunk_size=IMPORT_CHUNK,
            )
            if imported:
                record(*imported)
            imported = [(item.content_hash, item.uri) for item, _ in new_tasks], importing.result()
            created += len(new_tasks)
            progress.set_postfix(created=created)
        if imported:
            record(*imported)
    listed, skipped, problems = scan.listed, scan.skipped, scan.problems
    if problems:
        logger.warning("%d problems in %s, e.g. %s", len(problems), batch, problems[0])
    if not listed:
        raise StorageError(
            f"Batch {store.uri_for(batch)} has no {task_type.item_description}"
            + (f" ({len(skipped)} other files)" if skipped else "")
            + (f"; {problems[0]}" if problems else "")
            + ": add items or pick another batch"
        )
    if skipped:
        logger.warning(
            "Skipped %d files %s does not read in %s, e.g. %s",
            len(skipped),
            task_type.description,
            batch,
            skipped[0],
        )
    report = SyncReport(
        project_id=project_id,
        batch=batch,
        listed=listed,
        created=created,
        already_present=listed - created,
        skipped_keys=skipped,
        problems=problems,
        tasks=scan.tasks,
    )
    return report, index
