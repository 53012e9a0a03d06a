"""Which content a Label Studio project already holds, kept up to date incrementally.

A sync must know, for every listed item, whether a task with its content exists. Listing
a whole project costs about 0.3 ms per task on Label Studio, so the index is stored as an
artifact by each sync and the next one only asks for the tasks created since (ids above
the newest it covers). If any task it covers was deleted meanwhile (fewer tasks up to its
newest id than it counted), it is rebuilt from scratch, so a stale entry never hides an
item that needs a task.

The index lives in a SQLite file, looked up a listing page at a time, so a sync's memory
does not grow with the project.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import IO, NamedTuple

from annotation_loop.data.sqlite_file import SchemaError, SQLiteFile
from annotation_loop.labelstudio import LabelStudioClient, TaskRef

logger = logging.getLogger(__name__)

# Tasks per insert transaction while an index is extended from a stream of task refs.
EXTEND_CHUNK = 10_000
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS tasks (content_hash TEXT PRIMARY KEY, id INTEGER NOT NULL, "
    "uri TEXT NOT NULL, batch TEXT NOT NULL) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
)
_COLUMNS = "content_hash, id, uri, batch"


class IndexedTask(NamedTuple):
    id: int
    uri: str
    batch: str


class TaskIndex:
    """content hash -> the oldest task holding it, for one project of one Label Studio."""

    def __init__(
        self,
        label_studio_url: str,
        project_id: int,
        max_task_id: int = 0,  # the newest task covered
        task_count: int = 0,  # tasks covered, with or without a content hash
        db: SQLiteFile | None = None,
    ) -> None:
        self.label_studio_url = label_studio_url
        self.project_id = project_id
        self.max_task_id = max_task_id
        self.task_count = task_count
        self._db = db or SQLiteFile(_SCHEMA)

    def extend(self, refs: Iterable[TaskRef]) -> None:
        """Adds tasks, oldest first; a content hash already present keeps its older task."""
        stream = iter(refs)
        while chunk := list(islice(stream, EXTEND_CHUNK)):
            with self._db.transaction() as connection:
                connection.executemany(
                    f"INSERT OR IGNORE INTO tasks ({_COLUMNS}) VALUES (?, ?, ?, ?)",
                    [(r.content_hash, r.id, r.uri, r.batch) for r in chunk if r.content_hash],
                )
            self.max_task_id = max(self.max_task_id, *(ref.id for ref in chunk))
            self.task_count += len(chunk)

    def find(self, content_hashes: Iterable[str]) -> dict[str, IndexedTask]:
        """The tasks holding any of `content_hashes` (one query per few hundred)."""
        rows = self._db.query_in(
            f"SELECT {_COLUMNS} FROM tasks WHERE content_hash IN ({{}})", set(content_hashes)
        )
        return {content_hash: IndexedTask(*task) for content_hash, *task in rows}

    def items(self) -> Iterator[tuple[str, IndexedTask]]:
        """Every (content hash, task), oldest task first."""
        for content_hash, *task in self._db.iter_rows(f"SELECT {_COLUMNS} FROM tasks ORDER BY id"):
            yield content_hash, IndexedTask(*task)

    def __len__(self) -> int:
        return int(self._db.query("SELECT COUNT(*) FROM tasks")[0][0])

    def batches(self) -> set[str]:
        return {batch for (batch,) in self._db.query("SELECT DISTINCT batch FROM tasks")}

    def copy(self) -> TaskIndex:
        return TaskIndex(
            self.label_studio_url,
            self.project_id,
            self.max_task_id,
            self.task_count,
            self._db.copy(),
        )

    def dump(self, destination: IO[bytes]) -> None:
        """Writes the index, counters and all, as one SQLite file (see `load`)."""
        meta = {
            "label_studio_url": self.label_studio_url,
            "project_id": str(self.project_id),
            "max_task_id": str(self.max_task_id),
            "task_count": str(self.task_count),
        }
        with self._db.transaction() as connection:
            connection.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", meta.items())
        self._db.dump(destination)

    @classmethod
    def load(cls, source: IO[bytes]) -> TaskIndex:
        db = SQLiteFile(_SCHEMA, source)
        meta = dict(db.query("SELECT key, value FROM meta"))
        try:
            return cls(
                meta["label_studio_url"],
                int(meta["project_id"]),
                int(meta["max_task_id"]),
                int(meta["task_count"]),
                db,
            )
        except (KeyError, ValueError) as exc:
            problem = f"its meta table is malformed ({type(exc).__name__}: {exc})"
            raise SchemaError(problem) from None


def refresh_task_index(
    client: LabelStudioClient, project_id: int, previous: TaskIndex | None
) -> TaskIndex:
    """`previous` plus the tasks created since; a full listing when there is no usable
    previous index (another server or project) or tasks were deleted since."""
    if previous is not None and _still_covers(client, project_id, previous):
        index = previous.copy()
    else:
        index = TaskIndex(label_studio_url=client.url, project_id=project_id)
    index.extend(client.iter_task_refs(project_id, after_id=index.max_task_id))
    return index


def _still_covers(client: LabelStudioClient, project_id: int, index: TaskIndex) -> bool:
    if (index.label_studio_url, index.project_id) != (client.url, project_id):
        return False
    if client.count_tasks_up_to(project_id, index.max_task_id) != index.task_count:
        logger.info("Tasks were deleted from project %d: listing all again", project_id)
        return False
    return True
