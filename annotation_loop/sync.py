"""Bucket -> Label Studio: the project, its source storage, and one task per new object.

Identity is the object's content hash from the listing, so re-running a sync adds
nothing and an object moved to another batch folder is not imported twice.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, Field

from annotation_loop import image_classification
from annotation_loop.cors import warn_if_cors_missing
from annotation_loop.credentials import azure_account, read_service_account_json
from annotation_loop.errors import StorageError
from annotation_loop.labelstudio import LabelStudioClient, TaskRef
from annotation_loop.storage import DataSource, ObjectStore
from annotation_loop.uris import split_uri

logger = logging.getLogger(__name__)


class BatchTask(BaseModel):
    task_id: int
    uri: str  # where the object is now (a moved object keeps its task, not its old URI)
    content_hash: str


class SyncReport(BaseModel):
    """What a sync did; also the inference pipeline's list of the batch's tasks."""

    project_id: int
    batch: str
    listed: int
    created: int
    already_present: int
    skipped_keys: list[str] = Field(default_factory=list)  # not JPEG/PNG
    tasks: list[BatchTask] = Field(default_factory=list)  # every task of the batch


def ensure_project(
    client: LabelStudioClient, store: ObjectStore, title: str, labels: Sequence[str]
) -> int:
    """Gets or creates the project and connects the data source so annotators see images."""
    project_id = client.get_or_create_project(title, image_classification.label_config(labels))
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


def synced_batches(index: dict[str, TaskRef]) -> set[str]:
    return {ref.batch for ref in index.values()}


def choose_batch(
    store: ObjectStore, batches: list[str], index: dict[str, TaskRef], rerun: bool
) -> str | None:
    """`batch_1` for a first run; with `rerun`, the first batch not synced yet (None: all are)."""
    if not batches:
        raise StorageError(
            f"No batch_N/ folders under {store.source.dataset_uri}: put images in "
            f"{store.source.dataset_uri}/batch_1/ (or run the demo to seed it)"
        )
    if not rerun:
        return batches[0]
    done = synced_batches(index)
    return next((batch for batch in batches if batch not in done), None)


def sync_batch_to_project(
    client: LabelStudioClient,
    project_id: int,
    store: ObjectStore,
    batch: str,
) -> SyncReport:
    """Creates one task per object of `batch` whose content the project does not hold yet."""
    listing = store.list_batch(batch)
    if not listing.objects:
        raise StorageError(
            f"Batch {store.uri_for(batch)} has no JPEG/PNG images"
            + (f" ({len(listing.skipped)} other files)" if listing.skipped else "")
            + ": add images or pick another batch"
        )
    if listing.skipped:
        logger.warning(
            "Skipped %d non-image objects in %s, e.g. %s",
            len(listing.skipped),
            batch,
            listing.skipped[0],
        )
    known = client.task_index(project_id)
    new_tasks = []
    seen: set[str] = set()
    for obj in listing.objects:
        if obj.content_hash in known or obj.content_hash in seen:
            continue
        seen.add(obj.content_hash)
        new_tasks.append(image_classification.task_data(obj, store.label_studio_uri(obj.uri)))
    if new_tasks:
        created_ids = client.import_tasks(project_id, new_tasks)
        known = dict(known)
        for data, task_id in zip(new_tasks, created_ids, strict=True):
            known[data["content_hash"]] = TaskRef(
                id=task_id, content_hash=data["content_hash"], uri=data["uri"], batch=batch
            )
    tasks = sorted(
        (
            BatchTask(task_id=known[obj.content_hash].id, uri=obj.uri, content_hash=h)
            for h, obj in {o.content_hash: o for o in listing.objects}.items()
        ),
        key=lambda task: task.task_id,
    )
    return SyncReport(
        project_id=project_id,
        batch=batch,
        listed=len(listing.objects),
        created=len(new_tasks),
        already_present=len(listing.objects) - len(new_tasks),
        skipped_keys=listing.skipped,
        tasks=tasks,
    )
