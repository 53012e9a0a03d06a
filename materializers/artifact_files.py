"""Which files a materializer reads back from an artifact's folder: only those it writes.

The artifact store is shared storage, writable by whoever runs the loop or holds its
bucket keys, so a folder loaded from it is input from outside. Before a materializer
reads anything it lists the folder and refuses a file it never writes, and every file
name it reads from the artifact itself (a checkpoint's list of model files) must be a
plain name from its allow-list: nothing outside the folder (`/`, `..`, an absolute path)
and nothing a loader would execute (a pickled `.bin`, a `.py`) is ever opened.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import IO, TypeVar

from pydantic import BaseModel, ValidationError
from zenml.artifact_stores import BaseArtifactStore

from annotation_loop.data.sqlite_file import SchemaError
from annotation_loop.errors import ArtifactError

# Letters, digits, `.`, `_`, `-`, not starting with a dot: no separator, no `..`, no drive.
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

Fields = TypeVar("Fields", bound=BaseModel)
Table = TypeVar("Table")


def refuse(uri: str, problem: str) -> ArtifactError:
    """The error for an artifact that is not as the loop writes it."""
    return ArtifactError(
        f"Refusing the artifact at {uri}: {problem}. The loop did not write it this way: "
        "delete this artifact version (or restore it) and re-run the step that produces it"
    )


@dataclass(frozen=True)
class ArtifactFiles:
    """The files one kind of artifact folder holds: exact names, or names matching one of
    `patterns` (e.g. the shards of a large model)."""

    kind: str  # what the folder is, for messages: "an image checkpoint"
    names: frozenset[str]
    patterns: tuple[re.Pattern[str], ...] = ()

    def allows(self, name: str) -> bool:
        return name in self.names or any(pattern.fullmatch(name) for pattern in self.patterns)

    def check_name(self, name: object, uri: str) -> str:
        """`name`, read from the artifact at `uri`, if it is one of these files."""
        if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name):
            raise refuse(
                uri,
                f"it names the file {name!r}, which is not a plain file name inside the "
                "folder (no '/', '..' or absolute paths)",
            )
        if not self.allows(name):
            raise refuse(uri, f"it names {name!r}, which {self.kind} never holds")
        return name

    def check_folder(self, store: BaseArtifactStore, uri: str) -> list[str]:
        """The names in the folder `uri`, if each is one of these files."""
        # Object stores list a sub-folder with a trailing '/' and may list the folder itself.
        names = sorted({str(name).rstrip("/") for name in store.listdir(uri)} - {""})
        for name in names:
            if not self.allows(name):
                raise refuse(
                    uri, f"it holds {name!r}, which {self.kind} never holds ({self._expected()})"
                )
        return names

    def _expected(self) -> str:
        shapes = [*sorted(self.names), *(pattern.pattern for pattern in self.patterns)]
        return "expected only " + ", ".join(shapes)


def files(kind: str, names: Iterable[str], *patterns: str) -> ArtifactFiles:
    return ArtifactFiles(kind, frozenset(names), tuple(re.compile(p) for p in patterns))


def read_fields(store: BaseArtifactStore, uri: str, name: str, model: type[Fields]) -> Fields:
    """The JSON file `name` of the artifact at `uri`, checked against `model`."""
    with store.open(os.path.join(uri, name), "rb") as handle:
        content = handle.read()
    try:
        return model.model_validate_json(content)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"]) or "its content"
        raise refuse(uri, f"{name} is malformed ({where}: {problem['msg']})") from None


def read_table(
    store: BaseArtifactStore, uri: str, name: str, load: Callable[[IO[bytes]], Table]
) -> Table:
    """The SQLite file `name` of the artifact at `uri`, read by `load` (`SQLiteTable.load`
    and the like), which refuses a file whose schema is not the loop's."""
    with store.open(os.path.join(uri, name), "rb") as handle:
        try:
            return load(handle)
        except SchemaError as exc:
            raise refuse(uri, f"{name}: {exc.problem}") from None
