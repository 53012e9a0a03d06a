"""A batch's tasks, as a sync hands them to inference: one per distinct content, on disk."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple

from annotation_loop.data.sqlite_file import SQLiteTable


class BatchTask(NamedTuple):
    task_id: int
    uri: str  # where the item is now (a moved item keeps its task, not its old URI)
    content_hash: str
    input_ref: str  # what the model reads: the object URI, or the text


class BatchTasks(SQLiteTable):
    """The tasks of a batch's items, in a SQLite file: a 100k-item batch costs its step
    no memory to hold, and the next step reads it a page at a time, by task id."""

    # task_id is NULL while the item's task is being created (see `assign`). No index on it:
    # sorting once when read costs less than keeping an index up to date on every insert.
    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS tasks (content_hash TEXT PRIMARY KEY, task_id INTEGER, "
        "uri TEXT NOT NULL, input_ref TEXT NOT NULL) WITHOUT ROWID",
    )

    def unseen(self, content_hashes: Sequence[str]) -> list[str]:
        """`content_hashes` (distinct) that no stored task holds yet, in their order."""
        seen = {
            content_hash
            for (content_hash,) in self._db.query_in(
                "SELECT content_hash FROM tasks WHERE content_hash IN ({})", content_hashes
            )
        }
        return [content_hash for content_hash in content_hashes if content_hash not in seen]

    def add(self, tasks: Iterable[tuple[int | None, str, str, str]]) -> None:
        """Stores `(task_id, uri, content_hash, input_ref)` rows; `task_id` is None for an
        item whose task is still being created."""
        with self._db.transaction() as connection:
            connection.executemany(
                "INSERT INTO tasks (task_id, uri, content_hash, input_ref) VALUES (?, ?, ?, ?)",
                tasks,
            )

    def assign(self, task_ids: Iterable[tuple[str, int]]) -> None:
        """Records the created tasks: `(content_hash, task_id)` pairs."""
        with self._db.transaction() as connection:
            connection.executemany(
                "UPDATE tasks SET task_id = ? WHERE content_hash = ?",
                ((task_id, content_hash) for content_hash, task_id in task_ids),
            )

    def __len__(self) -> int:
        return int(self._db.query("SELECT COUNT(*) FROM tasks")[0][0])

    def __iter__(self) -> Iterator[BatchTask]:
        """The tasks by id, read a page at a time."""
        for row in self._db.iter_rows(
            "SELECT task_id, uri, content_hash, input_ref FROM tasks ORDER BY task_id"
        ):
            yield BatchTask(*row)
