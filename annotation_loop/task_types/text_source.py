"""What text task types share: items are texts, from `.txt` files or rows of JSON/CSV files,
kept inside the task so annotators, training and inference all read the same string."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from annotation_loop.data.confined_reads import UnreadableObject
from annotation_loop.data.storage import ObjectStore
from annotation_loop.task_types.base import ItemListing, SourceItem, TaskType
from annotation_loop.text.items import TEXT_SUFFIXES, item_key, parse_text_file, text_hash
from annotation_loop.text.train_config import TextTrainConfig

TO_NAME = "text"


class TextTaskType(TaskType):
    """Base of the task types whose input is one text."""

    items_in_bucket = False
    train_config_type = TextTrainConfig
    item_description = "non-empty texts (.txt files, or .json/.jsonl/.csv rows)"

    def task_data(self, item: SourceItem, store: ObjectStore) -> dict[str, Any]:
        return {
            "text": item.text,
            "uri": item.uri,
            "key": item.key,
            "batch": item.batch,
            "content_hash": item.content_hash,
        }

    def input_ref(self, data: Mapping[str, Any]) -> str:
        return str(data["text"])

    def iter_items(self, store: ObjectStore, batch: str) -> Iterator[ItemListing]:
        """Reads the batch's text files (texts live in the tasks, so a sync needs them) and
        gives each non-empty text an identity from its content."""
        for listing in store.iter_batch(batch, TEXT_SUFFIXES):
            page = ItemListing(batch=batch, skipped=listing.skipped, problems=listing.problems)
            by_uri = {obj.uri: obj for obj in listing.objects}
            for uri, data in store.read_many(by_uri):
                obj = by_uri[uri]
                if isinstance(data, UnreadableObject):
                    page.problems.append(f"{obj.key}: {data}")
                    continue
                parsed = parse_text_file(
                    obj.key, data, store.source.text_field, store.source.id_field
                )
                page.problems.extend(f"{obj.key}: {problem}" for problem in parsed.problems)
                page.items += [
                    SourceItem(
                        key=item_key(obj.key, row.row_id),
                        uri=f"{uri}#{row.row_id}" if row.row_id else uri,
                        batch=batch,
                        content_hash=text_hash(row.text),
                        text=row.text,
                    )
                    for row in parsed.rows
                ]
            yield page

    def load_inputs(
        self, store: ObjectStore, refs: Iterable[tuple[str, str]]
    ) -> Iterator[tuple[str, str]]:
        yield from refs  # the reference is the text itself
