"""Text items from raw files in a bucket: a whole `.txt` file, or the rows of a JSON,
JSON Lines or CSV file (each with an id and a text). Pure Python, no models."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from annotation_loop.errors import LoopError

TEXT_SUFFIXES = frozenset({".txt", ".json", ".jsonl", ".ndjson", ".csv"})
JSON_ROW_LISTS = ("data", "rows", "items")  # where a JSON object may hold its rows
UTF8_BOM = b"\xef\xbb\xbf"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
# `surrogateescape` turns each byte that is not UTF-8 into one of these code points.
ESCAPED_BYTES = re.compile("[\udc80-\udcff]+")


class TextFileError(LoopError):
    """A text file's structure cannot be read as items (wrong format, missing fields)."""


@dataclass(frozen=True)
class TextRow:
    row_id: str  # "" for a .txt file, which is one item
    text: str


@dataclass
class ParsedTextFile:
    rows: list[TextRow]
    problems: list[str] = field(default_factory=list)  # one line each, for the user
    encoding: str = "utf-8"


def text_hash(text: str) -> str:
    """`md5:<hex>` of the text's UTF-8 bytes.

    For a .txt file saved as UTF-8 (no BOM, `\\n` newlines, NFC) this is the MD5 the store
    lists for the file.
    """
    return f"md5:{hashlib.md5(text.encode('utf-8'), usedforsecurity=False).hexdigest()}"


def item_key(file_key: str, row_id: str) -> str:
    """`batch_1/reviews.jsonl#42` for a row, the file key itself for a .txt file."""
    return f"{file_key}#{row_id}" if row_id else file_key


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def normalise(text: str) -> str:
    """The canonical form of an item's text: `\\n` newlines and Unicode NFC.

    Label Studio's span offsets index the exact string a task holds, so that string must
    not change between syncs; and the same text must hash the same whether an editor wrote
    "é" as one code point or as "e" plus a combining accent, or ended lines with CRLF.
    """
    return unicodedata.normalize("NFC", normalise_newlines(text))


def _decode(key: str, data: bytes, problems: list[str]) -> tuple[str, str]:
    """(text, encoding name): UTF-8 (BOM or not), UTF-16 with a BOM, else cp1252 with a note."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    elif data.startswith(UTF16_BOMS):
        try:
            return data.decode("utf-16"), "utf-16"
        except UnicodeDecodeError as exc:
            raise TextFileError(
                f"{key} starts with a UTF-16 byte-order mark but is not UTF-16 ({exc.reason} "
                f"at byte {exc.start}): re-save it as UTF-8"
            ) from None
    text = data.decode("utf-8", errors="surrogateescape")
    if not ESCAPED_BYTES.search(text):
        return text, "utf-8"
    # Each run of bytes that is not UTF-8 is read as Windows-1252, the usual legacy encoding,
    # so a mostly-UTF-8 file with a few legacy bytes keeps its UTF-8 parts intact.
    legacy_bytes = sum(len(run) for run in ESCAPED_BYTES.findall(text))
    encoding = "cp1252" if ESCAPED_BYTES.sub("", text).isascii() else "utf-8+cp1252"
    text = ESCAPED_BYTES.sub(
        lambda run: run.group().encode("utf-8", "surrogateescape").decode("cp1252", "replace"),
        text,
    )
    problems.append(
        f"{legacy_bytes} byte(s) are not UTF-8 and were read as Windows-1252 (cp1252): "
        "check accented characters, or re-save the file as UTF-8"
    )
    return text, encoding


def _field_error(
    key: str, missing: str, found: Iterable[str], text_field: str, id_field: str
) -> TextFileError:
    names = ", ".join(repr(name) for name in sorted(found)) or "none"
    return TextFileError(
        f"{key} has no {missing!r} field (found: {names}): set LOOP_TEXT_FIELD / LOOP_ID_FIELD "
        f"to the names of its text and id fields (now {text_field!r} / {id_field!r})"
    )


def _json_rows(key: str, text: str) -> Iterator[tuple[str, Any]]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise TextFileError(
            f"{key} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}): "
            "fix the file, or write one object per line as .jsonl"
        ) from None
    if isinstance(document, dict):
        document = next(
            (document[name] for name in JSON_ROW_LISTS if isinstance(document.get(name), list)),
            None,
        )
    if not isinstance(document, list):
        raise TextFileError(
            f"{key} holds neither a JSON list of objects nor an object with such a list under "
            f"{' / '.join(repr(name) for name in JSON_ROW_LISTS)}: write the rows as a list"
        )
    for number, record in enumerate(document, start=1):
        yield f"row {number}", record


def _jsonl_rows(text: str, problems: list[str]) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(normalise_newlines(text).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            yield f"line {number}", json.loads(line)
        except json.JSONDecodeError:
            problems.append(f"line {number} is not JSON")


def _csv_rows(key: str, text: str, text_field: str, id_field: str) -> Iterator[tuple[str, Any]]:
    # newline="": the csv module finds row ends itself, so quoted newlines stay in the text.
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
        for name in (text_field, id_field):
            if name not in header:
                raise _field_error(key, name, header, text_field, id_field)
        for number, record in enumerate(reader, start=1):
            yield f"row {number}", record
    except csv.Error as exc:
        raise TextFileError(
            f"{key} is not a readable CSV file (line {reader.line_num}: {exc}): fix the file"
        ) from None


def _row(where: str, record: Any, text_field: str, id_field: str) -> TextRow | str:
    """The row, or a one-line problem saying why it is skipped."""
    if not isinstance(record, Mapping):
        return f"{where} is not an object"
    row_id, text = record.get(id_field), record.get(text_field)
    if isinstance(row_id, bool) or not isinstance(row_id, int | str):
        if row_id is None:
            return f"{where} has no {id_field!r}"
        return f"{where} has an {id_field!r} of type {type(row_id).__name__}, not text or integer"
    if not str(row_id).strip():
        return f"{where} has no {id_field!r}"
    if text is None:
        return f"{where} has no {text_field!r}"
    if not isinstance(text, str):
        return f"{where} has a {text_field!r} of type {type(text).__name__}, not text"
    if not text.strip():
        return f"{where} has an empty text"
    return TextRow(str(row_id), normalise(text))


def _checked_fields(
    key: str, records: list[tuple[str, Any]], text_field: str, id_field: str
) -> None:
    """Raises when no record has the text or id field: the settings, not the rows, are wrong."""
    found = {name for _, record in records if isinstance(record, Mapping) for name in record}
    for name in (text_field, id_field):
        if records and name not in found:
            raise _field_error(key, name, found, text_field, id_field)


def parse_text_file(
    key: str, data: bytes, text_field: str = "text", id_field: str = "id"
) -> ParsedTextFile:
    """The items of one raw file (format by suffix), with a note for each row skipped.

    Raises `TextFileError` when the file as a whole cannot be read as items.
    """
    suffix = PurePosixPath(key).suffix.lower()
    if suffix not in TEXT_SUFFIXES:
        raise TextFileError(
            f"{key} is not a text file: use one of {', '.join(sorted(TEXT_SUFFIXES))}"
        )
    problems: list[str] = []
    text, encoding = _decode(key, data, problems)
    if suffix == ".txt":
        if not text.strip():
            problems.append("the file has an empty text")
            return ParsedTextFile([], problems, encoding)
        return ParsedTextFile([TextRow("", normalise(text))], problems, encoding)
    if suffix == ".json":
        records = list(_json_rows(key, text))
    elif suffix == ".csv":
        records = list(_csv_rows(key, text, text_field, id_field))
    else:
        records = list(_jsonl_rows(text, problems))
    _checked_fields(key, records, text_field, id_field)
    rows: list[TextRow] = []
    first_seen: set[str] = set()
    for where, record in records:
        row = _row(where, record, text_field, id_field)
        if isinstance(row, str):
            problems.append(row)
        elif row.row_id in first_seen:
            problems.append(f"duplicate id {row.row_id!r} ({where}), kept the first")
        else:
            first_seen.add(row.row_id)
            rows.append(row)
    return ParsedTextFile(rows, problems, encoding)
