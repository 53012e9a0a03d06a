"""Confined reads and object-store faults against the S3, GCS and Azure stand-ins: a listing
page or an object read that fails is retried; one that keeps failing is skipped and reported,
and the run completes for the rest."""

from __future__ import annotations

import json
from typing import Any

import pytest

from annotation_loop.data import storage
from annotation_loop.data.confined_reads import ObjectGone, RefusedObject, UnreadableObject
from annotation_loop.data.storage import ObjectStore
from annotation_loop.data.sync import ensure_project, sync_batch_to_project
from annotation_loop.errors import StorageError
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.settings import CLOUDS, Settings
from annotation_loop.task_types import get_task_type

pytestmark = pytest.mark.integration

BUCKET_CLOUDS = [cloud for cloud in CLOUDS if cloud != "local"]


@pytest.fixture(autouse=True)
def no_retry_pause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(storage, "RETRY_DELAY", 0)


def bucket_store(settings: Settings, cloud: str, **limits: int) -> ObjectStore:
    source = settings.data_source(cloud).model_copy(update=limits)
    store = ObjectStore(source)
    store.ensure_bucket()
    return store


def failing_reads(
    store: ObjectStore, monkeypatch: pytest.MonkeyPatch, failures: dict[str, int]
) -> list[str]:
    """Reads of the keys in `failures` fail that many times, the way a store's 500 does;
    returns the keys of every read attempted."""
    attempts: list[str] = []
    real_cat_file = store.fs.cat_file

    def cat_file(path: str, *args: Any, **kwargs: Any) -> bytes:
        key = path.split(f"/{store.source.dataset}/", 1)[1]
        attempts.append(key)
        if attempts.count(key) <= failures.get(key, 0):
            raise OSError("503 Service Unavailable (injected)")
        return real_cat_file(path, *args, **kwargs)

    monkeypatch.setattr(store.fs, "cat_file", cat_file)
    return attempts


@pytest.mark.parametrize("cloud", BUCKET_CLOUDS)
def test_reads_are_confined_to_the_dataset_and_bounded(cloud_settings, cloud):
    settings = cloud_settings(cloud)
    store = bucket_store(settings, cloud, max_item_bytes=100)
    for key, data in {
        "batch_1/a.png": b"ay",
        "batch_1/empty.png": b"",
        "batch_1/big.png": b"b" * 101,
    }.items():
        store.write_bytes(key, data)
    # The same bucket, outside the dataset: another dataset whose name starts alike.
    neighbour = ObjectStore(
        store.source.model_copy(update={"dataset": f"{store.source.dataset}-x"})
    )
    private = neighbour.write_bytes("batch_1/private.png", b"private")
    root = store.source.root_uri
    hostile = {
        "a neighbouring prefix": private,
        "dot-dot": f"{store.uri_for('batch_1')}/../../{store.source.dataset}-x/batch_1/private.png",
        "another bucket": private.replace(root, f"{root}-other"),
        "another scheme": private.replace(f"{store.source.protocol}://", "http://"),
        "a local file": "/etc/passwd",
        "too big": store.uri_for("batch_1/big.png"),
    }

    results = dict(
        store.read_many(
            [*hostile.values(), store.uri_for("batch_1/a.png"), store.uri_for("batch_1/empty.png")]
        )
    )

    assert results.pop(store.uri_for("batch_1/a.png")) == b"ay"
    assert results.pop(store.uri_for("batch_1/empty.png")) == b""
    for attack, uri in hostile.items():
        assert isinstance(results[uri], RefusedObject), attack
    listing = store.list_batch("batch_1")
    assert [o.key for o in listing.objects] == ["batch_1/a.png", "batch_1/empty.png"]
    assert len(listing.problems) == 1 and "batch_1/big.png" in listing.problems[0]


@pytest.mark.parametrize("cloud", BUCKET_CLOUDS)
def test_one_unreadable_object_among_many_is_skipped_and_the_rest_read(
    cloud_settings, cloud, monkeypatch
):
    store = bucket_store(cloud_settings(cloud), cloud)
    objects = {f"batch_1/{i}.png": bytes([i]) * 3 for i in range(8)}
    for key, data in objects.items():
        store.write_bytes(key, data)
    listed = store.list_batch("batch_1").objects
    store.fs.rm(store._path(store.uri_for("batch_1/3.png")))  # deleted after the listing
    attempts = failing_reads(store, monkeypatch, {"batch_1/5.png": 99, "batch_1/6.png": 1})

    results = {uri: data for uri, data in store.read_many(o.uri for o in listed)}

    by_key = {o.key: results[o.uri] for o in listed}
    assert isinstance(by_key.pop("batch_1/3.png"), ObjectGone)
    failing = by_key.pop("batch_1/5.png")
    assert isinstance(failing, UnreadableObject) and "batch_1/5.png" in str(failing)
    assert by_key == {
        k: v for k, v in objects.items() if k not in ("batch_1/3.png", "batch_1/5.png")
    }
    assert attempts.count("batch_1/5.png") == storage.ATTEMPTS
    assert attempts.count("batch_1/6.png") == 2, "a read that failed once is retried"
    assert attempts.count("batch_1/3.png") == 1, "a deleted object is not retried"


def failing_pages(
    monkeypatch: pytest.MonkeyPatch, protocol: str, failures: int, page: int = 2
) -> list[str | None]:
    """The listing's `page`th page fails `failures` times; returns the token of every page
    asked for."""
    asked: list[str | None] = []
    real_page = storage.PAGE_LISTERS[protocol]

    async def list_page(fs: Any, bucket: str, prefix: str, token: str | None) -> storage.Page:
        asked.append(token)
        if len(set(asked)) == page and asked.count(token) <= failures:
            raise OSError("500 Internal Server Error (injected)")
        return await real_page(fs, bucket, prefix, token)

    monkeypatch.setitem(storage.PAGE_LISTERS, protocol, list_page)
    return asked


def five_objects(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    keys = [f"batch_1/{name}.png" for name in "abcde"]
    for key in keys:
        store.write_bytes(key, key.encode())
    monkeypatch.setattr(storage, "LISTING_PAGE", 2)
    return keys


@pytest.mark.parametrize("cloud", BUCKET_CLOUDS)
def test_a_listing_page_that_fails_for_a_moment_is_asked_for_again(
    cloud_settings, cloud, monkeypatch
):
    store = bucket_store(cloud_settings(cloud), cloud)
    keys = five_objects(store, monkeypatch)
    asked = failing_pages(monkeypatch, store.source.protocol, failures=storage.ATTEMPTS - 1)

    listing = store.list_batch("batch_1")

    assert [o.key for o in listing.objects] == keys and listing.problems == []
    assert len(asked) == 3 + storage.ATTEMPTS - 1, "three pages, the second asked for thrice"


@pytest.mark.parametrize("cloud", BUCKET_CLOUDS)
def test_a_listing_that_keeps_failing_is_cut_short_and_says_so(cloud_settings, cloud, monkeypatch):
    store = bucket_store(cloud_settings(cloud), cloud)
    keys = five_objects(store, monkeypatch)
    failing_pages(monkeypatch, store.source.protocol, failures=99)

    listing = store.list_batch("batch_1")

    assert [o.key for o in listing.objects] == keys[:2]
    (problem,) = listing.problems
    assert "stopped after 2 keys" in problem and "--inference --batch batch_1" in problem
    assert "\n" not in problem


@pytest.mark.parametrize("cloud", BUCKET_CLOUDS)
def test_a_listing_that_fails_from_the_start_raises(cloud_settings, cloud, monkeypatch):
    store = bucket_store(cloud_settings(cloud), cloud)
    five_objects(store, monkeypatch)
    failing_pages(monkeypatch, store.source.protocol, failures=99, page=1)

    with pytest.raises(StorageError, match="Cannot list"):
        store.list_batch("batch_1")


def test_a_sync_completes_for_what_it_could_list_and_read(cloud_settings, services, monkeypatch):
    """A text sync (which reads the files) on S3: one file keeps failing, and the listing
    stops for good after its first page: every text listed and read becomes a task, and the
    report names both failures; a second sync with the store healthy adds the rest."""
    settings = cloud_settings("aws", task="text")
    store = bucket_store(settings, "aws")
    for name in "abcde":
        store.write_bytes(
            f"batch_1/{name}.jsonl", json.dumps({"id": 1, "text": f"text {name}"}).encode()
        )
    monkeypatch.setattr(storage, "LISTING_PAGE", 3)
    text = get_task_type("text")
    client = LabelStudioClient(
        services.label_studio_url, services.label_studio_api_key.get_secret_value()
    )
    project_id = ensure_project(client, store, settings.project_name, settings.labels, text)
    with monkeypatch.context() as faults:
        failing_reads(store, faults, {"batch_1/b.jsonl": 99})
        failing_pages(faults, "s3", failures=99)
        report, index = sync_batch_to_project(client, project_id, store, "batch_1", text)

    assert sorted(t.input_ref for t in report.tasks) == ["text a", "text c"]
    assert report.created == 2 and len(client.task_index(project_id)) == 2
    assert any(p.startswith("batch_1/b.jsonl: Cannot read") for p in report.problems)
    assert any("stopped after 3 keys" in p for p in report.problems)

    healed, _ = sync_batch_to_project(client, project_id, store, "batch_1", text, index)
    assert (healed.created, healed.already_present) == (3, 2)
    assert len(client.task_index(project_id)) == 5
    client.delete_project(project_id)
