"""Bucket -> Label Studio: the project, its source storage, and one task per new item.

Identity is the item's content hash (an image's from the listing, a text's from the text),
so re-running a sync adds nothing and an item moved to another batch is not imported twice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from annotation_loop.cors import warn_if_cors_missing
from annotation_loop.credentials import azure_account, read_service_account_json
from annotation_loop.errors import StorageError
from annotation_loop.labelstudio import LabelStudioClient, TaskRef
from annotation_loop.storage import DataSource, ObjectStore
from annotation_loop.task_index import TaskIndex, refresh_task_index
from annotation_loop.task_types import SourceItem, TaskType
from annotation_loop.uris import split_uri

logger = logging.getLogger(__name__)


class BatchTask(BaseModel):
    task_id: int
    uri: str  # where the item is now (a moved item keeps its task, not its old URI)
    content_hash: str
    input_ref: str  # what the model reads: the object URI, or the text


class SyncReport(BaseModel):
    """What a sync did; also the inference pipeline's list of the batch's tasks."""

    project_id: int
    batch: str
    listed: int
    created: int
    already_present: int
    skipped_keys: list[str] = Field(default_factory=list)  # files the task type does not read
    problems: list[str] = Field(default_factory=list)  # e.g. empty texts, bad rows
    tasks: list[BatchTask] = Field(default_factory=list)  # every task of the batch


def ensure_project(
    client: LabelStudioClient,
    store: ObjectStore,
    title: str,
    labels: Sequence[str],
    task_type: TaskType,
) -> int:
    """Gets or creates the project; connects the data source when annotators need it to see
    the items (images stay in the bucket; texts travel inside the tasks)."""
    project_id = client.get_or_create_project(title, task_type.label_config(labels))
    if task_type.items_in_bucket:
        connect_source_storage(client, project_id, store.source)
    return project_id


def _not_connected(why: str) -> None:
    # Tasks still work for the loop; only annotators' image previews need the storage.
    logger.warning(
        "%s: the source storage is not connected, so annotators will not see images until "
        "you add it in Label Studio (project Settings > Cloud Storage)",
        why,
    )


def connect_source_storage(client: LabelStudioClient, project_id: int, source: DataSource) -> None:
    """Connects the dataset's bucket prefix so Label Studio resolves the tasks' URIs.

    Label Studio gets its own credentials (it presigns URLs for annotators' browsers); they
    are read from the same environment variables the storage clients use.
    """
    env = os.environ
    if source.protocol == "file":
        client.connect_local_source(project_id, Path(source.dataset_uri))
        return
    _, bucket, _ = split_uri(source.root_uri)
    if source.protocol == "s3":
        key, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        if not (key and secret):
            _not_connected("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set")
            return
        client.connect_s3_source(
            project_id,
            bucket=bucket,
            prefix=source.dataset,
            endpoint_url=source.endpoint_url,
            access_key=key,
            secret_key=secret,
            region=source.region,
        )
        if source.endpoint_url is None:  # a real AWS bucket
            warn_if_cors_missing(source)
    elif source.protocol == "gs":
        key_file = env.get("GOOGLE_APPLICATION_CREDENTIALS")
        if not (key_file or source.endpoint_url):
            _not_connected("GOOGLE_APPLICATION_CREDENTIALS is not set")
            return
        client.connect_gcs_source(
            project_id,
            bucket=bucket,
            prefix=source.dataset,
            credentials_json=read_service_account_json(Path(key_file)) if key_file else None,
            # An emulator has no signing key: Label Studio then serves the bytes itself.
            presign=source.endpoint_url is None,
        )
        if source.endpoint_url is None:
            warn_if_cors_missing(source)
    elif source.protocol == "az":
        account = azure_account(env)
        if account is None:
            _not_connected("no Azure account name and key in the environment")
            return
        # Label Studio builds *.blob.core.windows.net URLs; an emulator's endpoint is passed
        # through and the bytes are proxied (its presigned URLs would name the real host).
        emulated = bool(account.blob_endpoint) and ".blob.core.windows.net" not in str(
            account.blob_endpoint
        )
        client.connect_azure_source(
            project_id,
            container=bucket,
            prefix=source.dataset,
            account_name=account.name,
            account_key=account.key,
            presign=not emulated,
            blob_endpoint=account.blob_endpoint if emulated else None,
        )
        if not emulated:
            warn_if_cors_missing(source)


def choose_batch(
    store: ObjectStore, batches: list[str], synced: set[str], rerun: bool
) -> str | None:
    """`batch_1` for a first run; with `rerun`, the first batch not synced yet (None: all are)."""
    if not batches:
        raise StorageError(
            f"No batch_N/ folders under {store.source.dataset_uri}: put images in "
            f"{store.source.dataset_uri}/batch_1/ (or run the demo to seed it)"
        )
    if not rerun:
        return batches[0]
    return next((batch for batch in batches if batch not in synced), None)


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
    listing = task_type.list_items(store, batch)
    if listing.problems:
        logger.warning(
            "%d problems in %s, e.g. %s", len(listing.problems), batch, listing.problems[0]
        )
    if not listing.items:
        raise StorageError(
            f"Batch {store.uri_for(batch)} has no {task_type.item_description}"
            + (f" ({len(listing.skipped)} other files)" if listing.skipped else "")
            + (f"; {listing.problems[0]}" if listing.problems else "")
            + ": add items or pick another batch"
        )
    if listing.skipped:
        logger.warning(
            "Skipped %d files %s does not read in %s, e.g. %s",
            len(listing.skipped),
            task_type.description,
            batch,
            listing.skipped[0],
        )
    index = refresh_task_index(client, project_id, previous_index)
    unique: dict[str, SourceItem] = {}
    for item in listing.items:
        unique.setdefault(item.content_hash, item)  # the same content twice: one task
    datas = {h: task_type.task_data(item, store) for h, item in unique.items()}
    new_items = [item for item in unique.values() if item.content_hash not in index.tasks]
    if new_items:
        created_ids = client.import_tasks(
            project_id, [datas[item.content_hash] for item in new_items]
        )
        for item, task_id in zip(new_items, created_ids, strict=True):
            index.add(
                TaskRef(id=task_id, content_hash=item.content_hash, uri=item.uri, batch=batch)
            )
    tasks = sorted(
        (
            BatchTask(
                task_id=index.tasks[h].id,
                uri=item.uri,
                content_hash=h,
                input_ref=task_type.input_ref(datas[h]),
            )
            for h, item in unique.items()
        ),
        key=lambda task: task.task_id,
    )
    report = SyncReport(
        project_id=project_id,
        batch=batch,
        listed=len(listing.items),
        created=len(new_items),
        already_present=len(listing.items) - len(new_items),
        skipped_keys=listing.skipped,
        problems=listing.problems,
        tasks=tasks,
    )
    return report, index
