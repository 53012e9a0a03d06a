import base64
import hashlib
import time

import pytest

from annotation_loop.data.confined_reads import ObjectGone
from annotation_loop.data.storage import DataSource, ObjectStore, _content_hash, batch_sort_key
from annotation_loop.errors import StorageError


@pytest.fixture
def store(tmp_path):
    return ObjectStore(DataSource(root_uri=str(tmp_path), dataset="pets"))


def test_batches_sort_numerically(store):
    for batch in ("batch_10", "batch_2", "batch_1", "notes"):
        store.write_bytes(f"{batch}/a.png", b"x")
    assert store.list_batches() == ["batch_1", "batch_2", "batch_10"]
    assert sorted(["batch_10", "batch_9"], key=batch_sort_key) == ["batch_9", "batch_10"]


def test_listing_hashes_content_and_skips_non_images(store):
    store.write_bytes("batch_1/a.png", b"same bytes")
    store.write_bytes("batch_1/sub dir/b.JPG", b"same bytes")
    store.write_bytes("batch_1/c.jpeg", b"other")
    store.write_bytes("batch_1/readme.txt", b"hello")
    listing = store.list_batch("batch_1")
    keys = [o.key for o in listing.objects]
    assert keys == ["batch_1/a.png", "batch_1/c.jpeg", "batch_1/sub dir/b.JPG"]
    assert listing.skipped == ["batch_1/readme.txt"]
    by_key = {o.key: o for o in listing.objects}
    assert by_key["batch_1/a.png"].content_hash == by_key["batch_1/sub dir/b.JPG"].content_hash
    assert by_key["batch_1/a.png"].content_hash != by_key["batch_1/c.jpeg"].content_hash
    assert {o.batch for o in listing.objects} == {"batch_1"}


def test_local_objects_map_to_label_studio_local_files(store, tmp_path):
    uri = store.write_bytes("batch_1/sub dir/ü.png", b"x")
    assert store.label_studio_uri(uri) == "/data/local-files/?d=pets/batch_1/sub%20dir/%C3%BC.png"


def test_read_many_keeps_order_and_tolerates_vanished_objects(store):
    uris = [store.write_bytes(f"batch_1/{i}.png", bytes([i])) for i in range(5)]
    gone = store.uri_for("batch_1/gone.png")
    result = list(store.read_many([*uris, gone], concurrency=3))
    assert result[:-1] == [(u, bytes([i])) for i, u in enumerate(uris)]
    assert result[-1][0] == gone and isinstance(result[-1][1], ObjectGone)


def test_read_many_reads_only_a_window_ahead_of_its_consumer(store, monkeypatch):
    uris = [store.write_bytes(f"batch_1/{i}.png", bytes([i % 256])) for i in range(200)]
    started: list[str] = []
    real_read = store.read_bytes

    def counted_read(uri: str) -> bytes:
        started.append(uri)
        return real_read(uri)

    monkeypatch.setattr(store, "read_bytes", counted_read)
    reading = store.read_many(uris, concurrency=2)
    assert next(reading) == (uris[0], b"\x00")
    time.sleep(0.2)  # the pool works through what was submitted, and no further
    assert len(started) == 8  # 4 x concurrency: memory does not grow with the input
    assert [uri for uri, _ in reading] == uris[1:]
    assert len(started) == 200


def test_missing_dataset_is_a_one_line_error(tmp_path):
    missing = ObjectStore(DataSource(root_uri=str(tmp_path), dataset="nothing-here"))
    with pytest.raises(StorageError) as excinfo:
        missing.list_batches()
    assert "nothing-here" in str(excinfo.value)
    assert "\n" not in str(excinfo.value)


def test_content_hashes_are_spelled_alike_on_every_store():
    md5 = hashlib.md5(b"pixels").digest()
    expected = f"md5:{md5.hex()}"
    assert _content_hash({"ETag": f'"{md5.hex()}"'}) == expected  # S3 single-part upload
    assert _content_hash({"md5Hash": base64.b64encode(md5).decode()}) == expected  # GCS
    assert _content_hash({"content_settings": {"content_md5": bytearray(md5)}}) == expected
    # A multipart ETag is no MD5 of the bytes, but still the store's own fingerprint.
    assert _content_hash({"ETag": '"abc-3"'}) == "etag:abc-3"
    assert _content_hash({"size": 3}) is None  # local files: hashed on disk instead


def test_missing_azure_account_is_a_one_line_error(monkeypatch):
    for name in ("CONNECTION_STRING", "ACCOUNT_NAME", "ACCOUNT_KEY", "SAS_TOKEN"):
        monkeypatch.delenv(f"AZURE_STORAGE_{name}", raising=False)
    with pytest.raises(StorageError) as excinfo:
        ObjectStore(DataSource(root_uri="az://container", dataset="d"))
    message = str(excinfo.value)
    assert "\n" not in message and "AZURE_STORAGE_CONNECTION_STRING" in message


def test_failures_name_the_clouds_own_settings(monkeypatch):
    """Each failure's hint comes from the store's cloud: its credentials, its bucket's
    setting, and the stand-in's switch when the cloud itself cannot be reached."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    real_s3 = ObjectStore(DataSource(root_uri="s3://bucket", dataset="d"))
    assert "check AWS_ACCESS_KEY_ID" in str(real_s3._guard("list", PermissionError("Forbidden")))
    missing = str(real_s3._guard("list", FileNotFoundError("NoSuchBucket")))
    assert "LOOP_S3_BUCKET" in missing
    unreachable = str(real_s3._guard("list", OSError("Could not connect to the endpoint URL")))
    assert "set LOOP_LOCAL_S3=true" in unreachable
    emulator = DataSource(root_uri="gs://bucket", dataset="d", endpoint_url="http://127.0.0.1:9")
    down = str(ObjectStore(emulator)._guard("list", OSError("Cannot connect to host")))
    assert "http://127.0.0.1:9" in down and "run.py up" in down


def test_a_store_of_no_cloud_is_refused():
    with pytest.raises(StorageError, match="No cloud stores"):
        ObjectStore(DataSource(root_uri="ftp://host/data", dataset="d"))
