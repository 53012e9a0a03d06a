"""A batch's pre-annotations, as inference hands them to the upload: on disk, in the order
the model made them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from annotation_loop.data.sqlite_file import SQLiteTable


class TaskPrediction(NamedTuple):
    task_id: int
    result: list[dict[str, Any]]  # Label Studio result regions
    score: float  # the model's confidence, reassigned so that low scores are labelled first


class TaskPredictions(SQLiteTable):
    """Pre-annotations in a SQLite file: 100k of them cost the inference step and the
    upload step no memory to hold, and the upload reads them a page at a time."""

    SCHEMA = (
        "CREATE TABLE IF NOT EXISTS predictions (position INTEGER PRIMARY KEY, "
        "task_id INTEGER NOT NULL UNIQUE, result TEXT NOT NULL, score REAL NOT NULL)",
    )

    def add(self, predictions: Iterable[TaskPrediction]) -> None:
        rows = [
            (position, p.task_id, json.dumps(p.result), p.score)
            for position, p in enumerate(predictions, start=len(self))
        ]
        with self._db.transaction() as connection:
            connection.executemany("INSERT INTO predictions VALUES (?, ?, ?, ?)", rows)

    def rescore(self, scores: Sequence[float]) -> None:
        """Replaces the scores: one per prediction, in the order they were added."""
        if len(scores) != len(self):
            raise ValueError(f"{len(scores)} scores for {len(self)} predictions")
        with self._db.transaction() as connection:
            connection.executemany(
                "UPDATE predictions SET score = ? WHERE position = ?",
                ((score, position) for position, score in enumerate(scores)),
            )

    def __len__(self) -> int:
        return int(self._db.query("SELECT COUNT(*) FROM predictions")[0][0])

    def __iter__(self) -> Iterator[TaskPrediction]:
        """The predictions in the order they were added, read a page at a time."""
        for task_id, result, score in self._db.iter_rows(
            "SELECT task_id, result, score FROM predictions ORDER BY position"
        ):
            yield TaskPrediction(task_id, json.loads(result), score)
