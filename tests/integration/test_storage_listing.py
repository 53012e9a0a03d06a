"""Batch listings against the cloud stand-ins: page by page, in key order, no download."""

from __future__ import annotations

import hashlib

import pytest

from annotation_loop.data import storage
from annotation_loop.data.storage import ObjectStore
from annotation_loop.settings import CLOUDS

pytestmark = pytest.mark.integration

OBJECTS = {
    "batch_1/b.png": b"bee",
    "batch_1/a.png": b"ay",
    "batch_1/notes.txt": b"not an image",
    "batch_1/sub/c.jpg": b"sea",
    "batch_1/d.jpeg": b"ay",  # the same content as a.png
    "batch_10/x.png": b"another batch, a prefix of whose name is batch_1",
}


@pytest.mark.parametrize("cloud", [cloud for cloud in CLOUDS if cloud != "local"])
def test_listing_streams_pages_in_key_order_with_the_stores_md5(cloud_settings, cloud, monkeypatch):
    store = ObjectStore(cloud_settings(cloud).data_source(cloud))
    store.ensure_bucket()
    for key, data in OBJECTS.items():
        store.write_bytes(key, data)
    monkeypatch.setattr(storage, "LISTING_PAGE", 2)  # every store pages at this size

    pages = list(store.iter_batch("batch_1"))

    in_key_order = sorted(key for key in OBJECTS if key.startswith("batch_1/"))
    assert [len(page.objects) + len(page.skipped) for page in pages] == [2, 2, 1]
    listed = [key for page in pages for key in [o.key for o in page.objects] + page.skipped]
    assert listed == in_key_order
    assert [key for page in pages for key in page.skipped] == ["batch_1/notes.txt"]
    objects = [o for page in pages for o in page.objects]
    assert {o.key: o.content_hash for o in objects} == {
        o.key: f"md5:{hashlib.md5(OBJECTS[o.key]).hexdigest()}" for o in objects
    }
    assert {o.key: o.size for o in objects} == {o.key: len(OBJECTS[o.key]) for o in objects}
    assert [store.read_bytes(o.uri) for o in objects] == [OBJECTS[o.key] for o in objects]
