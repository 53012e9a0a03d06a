"""Items that are files in the bucket, one task each (images, audio): how they are listed,
what their tasks hold, and how their bytes are read back for the model."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, ClassVar

from annotation_loop.data.confined_reads import UnreadableObject
from annotation_loop.data.storage import ObjectStore
from annotation_loop.task_types.base import ItemListing, SourceItem

logger = logging.getLogger(__name__)


class BucketFiles:
    """The storage half of a task type whose items are the bucket's files. The bytes stay in
    the bucket: a task holds the file's URI, which Label Studio resolves through its source
    storage, so annotators see the file without the loop copying it."""

    media_field: ClassVar[str]  # the task data field the label config shows: "image", "audio"
    suffixes: ClassVar[frozenset[str]]  # the files of a batch that are items

    def task_data(self, item: SourceItem, store: ObjectStore) -> dict[str, Any]:
        return {
            self.media_field: store.label_studio_uri(item.uri),
            "uri": item.uri,
            "key": item.key,
            "batch": item.batch,
            "content_hash": item.content_hash,
        }

    def input_ref(self, data: Mapping[str, Any]) -> str:
        return str(data["uri"])

    def iter_items(self, store: ObjectStore, batch: str) -> Iterator[ItemListing]:
        for page in store.iter_batch(batch, self.suffixes):
            yield ItemListing(
                batch=batch,
                items=[
                    SourceItem(key=o.key, uri=o.uri, batch=batch, content_hash=o.content_hash)
                    for o in page.objects
                ],
                skipped=page.skipped,
                problems=page.problems,
            )

    def load_inputs(
        self, store: ObjectStore, refs: Iterable[tuple[str, str]]
    ) -> Iterator[tuple[str, bytes | None]]:
        """The files' bytes; None, with the reason logged, for one that is refused, gone,
        unreadable or that `usable_bytes` turns down."""
        keys_by_uri: dict[str, list[str]] = {}
        for key, uri in refs:
            keys_by_uri.setdefault(uri, []).append(key)
        for uri, data in store.read_many(keys_by_uri):
            if isinstance(data, UnreadableObject):
                logger.warning("Skipped an input: %s", data)
                usable = None
            else:
                usable = self.usable_bytes(uri, data, store)
            for key in keys_by_uri[uri]:
                yield key, usable

    def usable_bytes(self, uri: str, data: bytes, store: ObjectStore) -> bytes | None:
        """`data` if the model may decode it; None (with the reason logged) otherwise."""
        return data
