"""A project's tasks: importing them, finding them again by content, reading the changed
ones with their annotations, and annotating them (the demo's oracle).

Measured on Label Studio 1.23.2 (SQLite, 2 cores): tasks import ~3,500/s.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tqdm import tqdm

from annotation_loop.labelstudio import filters
from annotation_loop.labelstudio.chunked_imports import IMPORT_MAX_BYTES, Chunking, import_in_chunks
from annotation_loop.labelstudio.task_pages import task_page, tasks_by_id
from annotation_loop.labelstudio.transport import ApiArea

# How far before the watermark an annotation fetch starts. Label Studio stamps a task's
# `updated_at` when a change is saved but the change is seen only once its transaction
# commits: a change stamped just before a fetch's newest task and committed after that
# fetch would fall behind the watermark. A bulk action (e.g. annotations from predictions
# over a whole project) holds its transaction for minutes; the tasks re-read in this window
# cost little and merge as unchanged.
LATE_COMMIT_OVERLAP = timedelta(minutes=10)

# Task updates in flight at once when setting overlap: enough to hide the round trips,
# few enough not to crowd out annotators on a small server.
OVERLAP_REQUESTS = 4


@dataclass(frozen=True)
class TaskRef:
    """A task as the sync sees it: which object it shows."""

    id: int
    content_hash: str
    uri: str
    batch: str


@dataclass(frozen=True)
class LabelledTask:
    """A task as the annotation fetch sees it: full annotation and prediction dicts."""

    id: int
    data: dict[str, Any]
    annotations: list[dict[str, Any]]
    predictions: list[dict[str, Any]]
    updated_at: datetime


class Tasks(ApiArea):
    """The tasks of Label Studio's projects, and their annotations."""

    def iter_task_refs(self, project_id: int, after_id: int = 0) -> Iterator[TaskRef]:
        """Every task with an id above `after_id`, oldest first (`content_hash` is "" for
        tasks the loop did not create)."""
        for task in tasks_by_id(self.transport, project_id, include="id,data", after_id=after_id):
            data = task["data"]
            content_hash = data.get("content_hash")
            yield TaskRef(
                id=int(task["id"]),
                # A task imported by hand may carry anything there; only the loop's own count.
                content_hash=content_hash if isinstance(content_hash, str) else "",
                uri=str(data.get("uri", "")),
                batch=str(data.get("batch", "")),
            )

    def task_index(self, project_id: int) -> dict[str, TaskRef]:
        """Every task that has a `content_hash`, keyed by it (the lowest id wins)."""
        index: dict[str, TaskRef] = {}
        for ref in self.iter_task_refs(project_id):
            if ref.content_hash:
                index.setdefault(ref.content_hash, ref)
        return index

    def count_tasks_up_to(self, project_id: int, task_id: int) -> int:
        """How many of the project's tasks have an id up to `task_id` (one request)."""
        page = task_page(
            self.transport,
            project_id,
            query_filters=filters.all_of([filters.task_id("less_or_equal", task_id)]),
            ordering="tasks:id",
            page_size=1,
            include="id",
        )
        return int(page["total"])

    def import_tasks(
        self,
        project_id: int,
        tasks: Sequence[dict[str, Any]],
        chunk_size: int = 5000,
        max_bytes: int = IMPORT_MAX_BYTES,
    ) -> list[int]:
        """Creates one task per data dict, in bulk (requests of at most `chunk_size` tasks
        and `max_bytes` of JSON); returns their ids in order.

        Each dict carries a `content_hash`: after a chunk failed in doubt (the connection
        dropped once the server had it), the tasks that made it are found by it and only
        the rest are sent again.
        """

        def send(_: Sequence[dict[str, Any]], body: bytes) -> list[int]:
            created = self.transport.request(
                "POST",
                f"/api/projects/{project_id}/import",
                params={"return_task_ids": "true"},
                json_content=body,
                repeatable=False,
            )
            return [int(task_id) for task_id in created["task_ids"]]

        def already_created(chunk: Sequence[dict[str, Any]]) -> dict[int, int]:
            index = self.task_index(project_id)
            return {
                position: index[data["content_hash"]].id
                for position, data in enumerate(chunk)
                if data.get("content_hash") in index
            }

        return import_in_chunks(
            self.transport,
            tasks,
            Chunking("tasks", len(tasks), chunk_size, max_bytes),
            lambda data: {"data": data},
            send,
            already_created,
        )

    def iter_tasks_updated_since(
        self,
        project_id: int,
        since: datetime | None,
        page_size: int = 1000,
        overlap: timedelta = LATE_COMMIT_OVERLAP,
    ) -> Iterator[LabelledTask]:
        """Tasks changed after `since` minus `overlap` (all annotated tasks when `since` is
        None), oldest change first. The overlap catches changes committed late (see
        LATE_COMMIT_OVERLAP); the tasks it re-reads are the caller's to de-duplicate.

        Annotation creates, updates, skips and deletes bump a task's `updated_at`;
        prediction imports do not. A task annotated before is returned when it has lost its
        annotations; a task created after `since` only once it has an annotation. Pages are
        keyed by `updated_at`, so a task changed during the fetch comes again at the end
        rather than being skipped: the newest `updated_at` seen is a safe next `since`.
        """
        since = _utc(since) if since is not None else None
        start = since - overlap if since is not None else None
        cursor = start
        seen_at_cursor: set[int] = set()
        page = 1
        while True:
            tasks = task_page(
                self.transport,
                project_id,
                query_filters=filters.changed(cursor, since),
                ordering="tasks:updated_at",
                page_size=page_size,
                page=page,
            )["tasks"]
            for task in tasks:
                updated_at = _parse_time(task["updated_at"])
                if task["id"] in seen_at_cursor or (start is not None and updated_at <= start):
                    continue
                yield LabelledTask(
                    id=int(task["id"]),
                    data=task["data"],
                    annotations=task.get("annotations") or [],
                    predictions=task.get("predictions") or [],
                    updated_at=updated_at,
                )
            if len(tasks) < page_size:
                return
            newest = _parse_time(tasks[-1]["updated_at"])
            at_newest = {t["id"] for t in tasks if _parse_time(t["updated_at"]) == newest}
            if newest == cursor:
                # A whole page changed at one instant (a bulk action): step through it.
                page += 1
                seen_at_cursor |= at_newest
            else:
                cursor, seen_at_cursor, page = newest, at_newest, 1

    def set_overlap(self, task_ids: Sequence[int], annotators: int) -> None:
        """Asks for `annotators` annotations of each of these tasks: Label Studio serves a
        task to annotators until that many labelled it.

        One request per task: the API has no bulk form, and the project-wide setting
        (maximum annotations with an overlap cohort) draws the cohort anew at random
        whenever tasks are added, so it cannot keep a chosen set. A few requests run at
        once; each is an idempotent update, retried like a read.
        """

        def patch(task_id: int) -> None:
            self.transport.request(
                "PATCH",
                f"/api/tasks/{task_id}/",
                json_body={"overlap": annotators},
                repeatable=True,
            )

        with (
            ThreadPoolExecutor(OVERLAP_REQUESTS, thread_name_prefix="overlap") as pool,
            tqdm(total=len(task_ids), desc="Overlap", unit="tasks", disable=not task_ids) as bar,
        ):
            for _ in pool.map(patch, task_ids):
                bar.update()

    def create_annotation(
        self,
        task_id: int,
        result: list[dict[str, Any]],
        *,
        parent_prediction: int | None = None,
        was_cancelled: bool = False,
        completed_by: int | None = None,
    ) -> int:
        """One annotation, as the user `completed_by` (an administrator's API key may name
        any user of its organization: the demo's simulated annotators), else as the API
        key's user."""
        body: dict[str, Any] = {"result": result, "was_cancelled": was_cancelled}
        if parent_prediction is not None:
            body["parent_prediction"] = parent_prediction
        if completed_by is not None:
            body["completed_by"] = completed_by
        return self.transport.create(f"/api/tasks/{task_id}/annotations/", body)

    def annotator_ids(self, task_id: int) -> set[int]:
        """The ids of the users with a (not cancelled) annotation of the task."""
        annotations = self.transport.request(
            "GET", f"/api/tasks/{task_id}/annotations/", repeatable=True
        )
        return {int(annotation["completed_by"]) for annotation in annotations}


def _utc(moment: datetime) -> datetime:
    """`moment` in UTC; a naive datetime is taken to be UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _parse_time(text: str) -> datetime:
    return _utc(datetime.fromisoformat(text))
