"""A SQLite database in a private temporary file, for what a step hands on that grows with
the project (a task index, a batch's task list).

Rows live on disk and only SQLite's page cache is in memory, so a step's memory stays flat
however many tasks the project has. A materializer stores the file itself as the artifact
(`dump`), and the next step reads it back into a temporary file of its own
(`SQLiteFile(schema, source)`): nothing assumes a disk shared between steps. A file read
back comes from the artifact store, which anyone with its keys can write: it is opened
read-only and compared with the schema first, and refused if it holds any other table,
column, index, view or trigger.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import threading
import weakref
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any, ClassVar, Self

from annotation_loop.errors import ArtifactError

# Rows per statement for IN (...) lookups: far below SQLite's 32,766 bound parameters.
LOOKUP_CHUNK = 900


class SQLiteFile:
    """One connection to a database in a file that is deleted with this object.

    The file is scratch space: its durability comes from the artifact store, so SQLite
    keeps its rollback journal in memory and does not sync. A lock serialises statements,
    because a sync looks items up in its listing thread while it records new tasks in the
    main one.
    """

    def __init__(self, schema: Sequence[str], source: IO[bytes] | None = None) -> None:
        """A database with the tables of `schema` (`CREATE ... IF NOT EXISTS` statements),
        empty or a copy of `source`'s."""
        scratch = tempfile.mkdtemp(prefix="annotation-loop-")
        self.path = Path(scratch) / "data.sqlite"
        if source is not None:
            with self.path.open("wb") as copy:
                shutil.copyfileobj(source, copy)
            try:
                check_schema(self.path, schema)
            except SchemaError:
                shutil.rmtree(scratch, ignore_errors=True)
                raise
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        weakref.finalize(self, _discard, self._db, scratch)
        # SQLite's own page cache (2 MB) is kept: the OS caches the file, and a bigger one
        # made 100k lookups no faster, only the step's memory grow with the table.
        for pragma in ("journal_mode=MEMORY", "synchronous=OFF", "trusted_schema=OFF"):
            self._db.execute(f"PRAGMA {pragma}")
        self._schema = tuple(schema)
        with self.transaction() as connection:
            for statement in self._schema:
                connection.execute(statement)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection, for statements that commit together (one transaction: 100k
        inserts in one go instead of one fsync-free commit each)."""
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def query(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()

    def query_in(self, sql: str, values: Iterable[Any]) -> list[Any]:
        """Rows of `sql`, whose one `IN ({})` is filled with `values`, in chunks."""
        rows: list[Any] = []
        pending = list(values)
        for start in range(0, len(pending), LOOKUP_CHUNK):
            chunk = pending[start : start + LOOKUP_CHUNK]
            rows += self.query(sql.format(",".join("?" * len(chunk))), chunk)
        return rows

    def iter_rows(self, sql: str, page_size: int = 10_000) -> Iterator[Any]:
        """`sql`'s rows, fetched a page at a time (no lock held between pages: callers do not
        write while they iterate)."""
        cursor = self._db.execute(sql)
        while rows := cursor.fetchmany(page_size):
            yield from rows

    def dump(self, destination: IO[bytes]) -> None:
        """Writes the database file to `destination` (an artifact store file)."""
        with self._lock, self.path.open("rb") as source:
            shutil.copyfileobj(source, destination)

    def copy(self) -> SQLiteFile:
        with self._lock, self.path.open("rb") as source:
            return SQLiteFile(self._schema, source)


class SQLiteTable:
    """Rows a step hands on whole, in a SQLiteFile of their own with the class's SCHEMA:
    a materializer stores them with `dump` and reads them back with `load`."""

    SCHEMA: ClassVar[tuple[str, ...]]

    def __init__(self, db: SQLiteFile | None = None) -> None:
        self._db = db or SQLiteFile(self.SCHEMA)

    def dump(self, destination: IO[bytes]) -> None:
        self._db.dump(destination)

    @classmethod
    def load(cls, source: IO[bytes]) -> Self:
        return cls(SQLiteFile(cls.SCHEMA, source))


class SchemaError(ArtifactError):
    """A stored SQLite file whose schema is not the one the loop writes."""

    def __init__(self, problem: str) -> None:
        super().__init__(
            f"A stored SQLite file is not one the loop writes: {problem}; delete that artifact "
            "version and re-run the step that produces it"
        )
        self.problem = problem


# Every object in a database's schema: (type, name) -> (its table, its CREATE statement).
Shape = dict[tuple[str, str], tuple[str, str | None]]


def check_schema(path: Path, schema: Sequence[str]) -> None:
    """Refuses (SchemaError) the database at `path` unless its tables (columns, types,
    constraints) and indexes are exactly those `schema` creates, with no view or trigger."""
    expected = sqlite3.connect(":memory:")
    stored = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        for statement in schema:
            expected.execute(statement)
        wanted = _shape(expected)
        try:
            # Nothing stored in the file's schema may call functions while it is read.
            stored.execute("PRAGMA trusted_schema=OFF")
            found = _shape(stored)
        except sqlite3.DatabaseError as exc:
            raise SchemaError(f"it is not a SQLite database ({exc})") from None
    finally:
        expected.close()
        stored.close()
    if extra := sorted(found.keys() - wanted.keys()):
        kind, name = extra[0]
        raise SchemaError(f"it holds the {kind} {name!r}, which the loop never creates")
    if missing := sorted(wanted.keys() - found.keys()):
        kind, name = missing[0]
        raise SchemaError(f"it lacks the {kind} {name!r}")
    for (kind, name), definition in sorted(wanted.items()):
        if found[(kind, name)] != definition:
            raise SchemaError(
                f"its {kind} {name!r} is defined as {_one_line(found[(kind, name)])}, "
                f"not {_one_line(definition)}"
            )


def _shape(db: sqlite3.Connection) -> Shape:
    # SQLite keeps each CREATE statement as written (less IF NOT EXISTS), so equal
    # statements mean equal columns, types, constraints and defaults.
    rows = db.execute("SELECT type, name, tbl_name, sql FROM sqlite_master")
    return {(kind, name): (table, sql) for kind, name, table, sql in rows}


def _one_line(definition: tuple[str, str | None], limit: int = 200) -> str:
    table, sql = definition
    text = " ".join((sql or f"an automatic index on {table!r}").split())
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _discard(db: sqlite3.Connection, scratch: str) -> None:
    db.close()
    shutil.rmtree(scratch, ignore_errors=True)
