"""Tasks whose media was uploaded to Label Studio itself: the ML backend reads it through
Label Studio, and the task type's own `load_inputs` turns the bytes into its model input as
for a bucket object (same size, pixel and decode checks)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urljoin

from annotation_loop.data.confined_reads import scheme_of
from annotation_loop.data.storage import DataSource, ObjectStore
from annotation_loop.labelstudio.uploads import Uploads, looks_like_upload

WEB_SCHEMES = ("http", "https")


class StoreWithUploads(ObjectStore):
    """The dataset's store, which also reads Label Studio's uploaded files: an `http(s)`
    input reference (never a bucket URI) is read through `uploads`, which only ever asks
    Label Studio's own host, within the dataset's `max_item_bytes`."""

    def __init__(self, source: DataSource, uploads: Uploads) -> None:
        super().__init__(source)
        self.uploads = uploads

    def upload_ref(self, data: Mapping[str, Any]) -> str | None:
        """The input reference of a task made by uploading a file: its data's first value
        naming an uploaded file, as a full URL on Label Studio (relative paths are what
        Label Studio writes); None if no value looks like one. Whether it may be read is
        checked when it is (`Uploads.read_upload`)."""
        value = next((v for v in data.values() if looks_like_upload(v)), None)
        if value is None:
            return None
        base = self.uploads.transport.url
        return value if scheme_of(value) in WEB_SCHEMES else urljoin(f"{base}/", value)

    def read_bytes(self, uri: str) -> bytes:
        if scheme_of(uri) in WEB_SCHEMES:
            return self.uploads.read_upload(uri, self.source.max_item_bytes)
        return super().read_bytes(uri)
