"""Whatever a task names, only regular files under the dataset, of bounded size, are read;
one object that cannot be read is skipped and reported, and the others are read."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from annotation_loop.data import storage
from annotation_loop.data.batch_tasks import BatchTask
from annotation_loop.data.confined_reads import (
    ObjectGone,
    RefusedObject,
    UnreadableObject,
    confined_path,
)
from annotation_loop.data.storage import DataSource, ObjectStore
from annotation_loop.errors import StorageError
from annotation_loop.learning import pre_annotations
from annotation_loop.learning.active_learning import RankingConfig
from annotation_loop.learning.training_data import load_examples
from annotation_loop.ml_backend import ServedModel
from annotation_loop.ml_backend.predictions import predict_tasks
from annotation_loop.task_types import Prediction, get_task_type
from annotation_loop.task_types.image import ImageClassification

GOOD = b"\x89PNG good bytes"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "pets" / "batch_1").mkdir(parents=True)
    (tmp_path / "pets" / "batch_1" / "good.png").write_bytes(GOOD)
    (tmp_path / "secret.txt").write_text("the neighbour's secret")
    (tmp_path / "pets-private").mkdir()
    (tmp_path / "pets-private" / "x.png").write_bytes(b"private")
    return tmp_path


@pytest.fixture
def store(root: Path) -> ObjectStore:
    return ObjectStore(DataSource(root_uri=str(root), dataset="pets", max_item_bytes=100))


def read_all(store: ObjectStore, uris: Iterable[str]) -> dict[str, bytes | UnreadableObject]:
    """`store.read_many`, in a thread: a read that blocks fails the test instead of hanging."""
    results: dict[str, bytes | UnreadableObject] = {}
    reader = threading.Thread(target=lambda: results.update(store.read_many(uris)), daemon=True)
    reader.start()
    reader.join(timeout=60)
    assert not reader.is_alive(), "a read blocked"
    return results


def hostile_uris(root: Path) -> dict[str, str]:
    """What a task's `uri` might name instead of an object of the dataset."""
    batch = root / "pets" / "batch_1"
    os.mkfifo(batch / "fifo.png")
    (batch / "zero.png").symlink_to("/dev/zero")
    (batch / "leak.png").symlink_to(root / "secret.txt")
    (batch / "big.png").write_bytes(b"x" * 101)
    return {
        "dot-dot": f"{batch}/../../secret.txt",
        "absolute": "/etc/passwd",
        "device": "/dev/zero",
        "fifo": str(batch / "fifo.png"),
        "link to a device": str(batch / "zero.png"),
        "link out of the dataset": str(batch / "leak.png"),
        "sibling prefix": str(root / "pets-private" / "x.png"),
        "relative": "pets/batch_1/good.png",
        "another scheme": f"file://{root}/secret.txt",
        "a bucket": "s3://annotation-loop/pets/batch_1/good.png",
        "http": "http://169.254.169.254/latest/meta-data/",
        "oversized": str(batch / "big.png"),
        "folder": str(batch),
    }


def test_hostile_uris_are_refused_and_the_rest_is_read(store: ObjectStore, root: Path) -> None:
    hostile = hostile_uris(root)
    good = str(root / "pets" / "batch_1" / "good.png")

    results = read_all(store, [*hostile.values(), good])

    assert results[good] == GOOD
    for attack, uri in hostile.items():
        assert isinstance(results[uri], RefusedObject), attack
        assert "\n" not in str(results[uri])
    assert "LOOP_MAX_ITEM_BYTES" in str(results[hostile["oversized"]])
    assert "regular file" in str(results[hostile["fifo"]])


def test_an_object_at_the_size_limit_is_read(store: ObjectStore, root: Path) -> None:
    (root / "pets" / "batch_1" / "limit.png").write_bytes(b"y" * 100)
    assert store.read_bytes(str(root / "pets" / "batch_1" / "limit.png")) == b"y" * 100


@pytest.mark.parametrize(
    ("uri", "refused"),
    [
        ("s3://bucket/pets/batch_1/a.png", False),
        ("s3://bucket/pets/batch_1/sub/./a.png", False),
        ("s3://bucket/pets/batch_1/../../other/a.png", True),
        ("s3://bucket/pets/batch_1/../batch_2/a.png", True),  # no '..' at all
        ("s3://other-bucket/pets/batch_1/a.png", True),
        ("s3://bucket/pets-private/a.png", True),
        ("s3://bucket/pets", True),
        ("s3://bucket/other/a.png", True),
        ("gs://bucket/pets/batch_1/a.png", True),
        ("http://bucket/pets/batch_1/a.png", True),
        ("file:///bucket/pets/batch_1/a.png", True),
        ("/bucket/pets/batch_1/a.png", True),
        ("bucket/pets/batch_1/a.png", True),
        ("", True),
    ],
)
def test_bucket_keys_are_confined_to_the_dataset_prefix(uri: str, refused: bool) -> None:
    if refused:
        with pytest.raises(RefusedObject):
            confined_path(uri, "s3", "s3://bucket/pets")
    else:
        assert confined_path(uri, "s3", "s3://bucket/pets") == uri.removeprefix("s3://")


def test_the_local_listing_refuses_what_it_cannot_read(store: ObjectStore, root: Path) -> None:
    hostile_uris(root)
    (root / "pets" / "batch_1" / "everything.png").symlink_to("/", target_is_directory=True)

    listing = read_listing(store)

    refused = {problem.split(":")[0] for problem in listing.problems}
    assert {
        "batch_1/big.png",
        "batch_1/fifo.png",
        "batch_1/zero.png",
        "batch_1/leak.png",
        "batch_1/everything.png",
    } <= refused
    assert [o.key for o in listing.objects] == ["batch_1/good.png"]


def read_listing(store: ObjectStore) -> storage.BatchListing:
    listing: list[storage.BatchListing] = []
    lister = threading.Thread(target=lambda: listing.append(store.list_batch("batch_1")))
    lister.daemon = True
    lister.start()
    lister.join(timeout=60)
    assert not lister.is_alive(), "the listing blocked"
    return listing[0]


def test_the_text_sync_reports_files_it_refuses(root: Path) -> None:
    store = ObjectStore(DataSource(root_uri=str(root), dataset="pets", max_item_bytes=200))
    batch = root / "pets" / "batch_1"
    (batch / "good.png").unlink()
    (batch / "small.jsonl").write_text('{"id": 1, "text": "fine"}\n')
    (batch / "huge.jsonl").write_text('{"id": 2, "text": "%s"}\n' % ("x" * 300))
    os.mkfifo(batch / "pipe.txt")

    listing = get_task_type("text").list_items(store, "batch_1")

    assert [item.text for item in listing.items] == ["fine"]
    assert any(p.startswith("batch_1/huge.jsonl: Refused") for p in listing.problems)
    assert any(p.startswith("batch_1/pipe.txt: Refused") for p in listing.problems)


class RecordingImages(ImageClassification):
    """The image task type with a model that predicts "cat" for whatever it is given."""

    def __init__(self) -> None:
        self.inputs: dict[str, Any] = {}

    def predict(
        self, model: Any, inputs: Iterable[tuple[str, Any]], batch_size: int
    ) -> tuple[list[Prediction], list[str]]:
        self.inputs = dict(inputs)
        return [Prediction(key, "cat", 0.9) for key in self.inputs], []


def test_the_ml_backend_predicts_only_confined_inputs(
    store: ObjectStore, root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hostile = hostile_uris(root)
    task_type = RecordingImages()
    served = ServedModel("pets:1", task_type, ("cat", "dog"), model=None)
    good = str(root / "pets" / "batch_1" / "good.png")
    tasks = [{"id": i, "data": {"uri": uri}} for i, uri in enumerate([good, *hostile.values()])]

    with caplog.at_level(logging.WARNING):
        results = predict_tasks(served, tasks, store, batch_size=8)

    assert task_type.inputs == {"0": GOOD}  # the model never saw another byte
    assert results[0] != [] and all(result == [] for result in results[1:])
    skipped = [r.getMessage() for r in caplog.records if "Skipped an input" in r.getMessage()]
    assert len(skipped) == len(hostile)


def test_inference_predicts_only_confined_inputs_and_reports_the_rest(
    store: ObjectStore, root: Path
) -> None:
    hostile = hostile_uris(root)
    task_type = RecordingImages()
    good = str(root / "pets" / "batch_1" / "good.png")
    tasks = [
        BatchTask(task_id=i, uri=uri, content_hash=f"md5:{i}", input_ref=uri)
        for i, uri in enumerate([good, *hostile.values()])
    ]

    predicted = pre_annotations.predict_tasks(
        task_type, None, store, tasks, batch_size=8, ranking=RankingConfig(strategy="random")
    )

    assert task_type.inputs == {"0": GOOD}
    assert [p.task_id for p in predicted.predictions] == [0]
    assert {t.input_ref for t in predicted.unreadable} == set(hostile.values())


def test_training_skips_and_counts_unreadable_items(
    store: ObjectStore, root: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from annotation_loop.learning.annotations import LabelledItem

    hostile = hostile_uris(root)
    good = str(root / "pets" / "batch_1" / "good.png")
    items = [
        LabelledItem(task_id=i, content_hash=f"md5:{i}", input_ref=uri, target="cat")
        for i, uri in enumerate([good, *hostile.values()])
    ]

    with caplog.at_level(logging.WARNING):
        examples = load_examples(get_task_type("image"), store.source, items)

    assert [e.input for e in examples] == [GOOD]
    assert f"{len(hostile)} of {len(items)} labelled items could not be read" in caplog.text


# -- faults: retried, then skipped --------------------------------------------------------


@pytest.fixture
def flaky(store: ObjectStore, monkeypatch: pytest.MonkeyPatch) -> Callable[..., list[str]]:
    """`flaky(uri, failures, error)`: reads of `uri` fail `failures` times with `error`;
    returns the list of reads attempted."""
    monkeypatch.setattr(storage, "RETRY_DELAY", 0)
    attempts: list[str] = []
    real_read = store._read

    def make(uri: str, failures: int, error: Exception) -> list[str]:
        def read(read_uri: str, path: str) -> bytes:
            attempts.append(read_uri)
            if read_uri == uri and attempts.count(uri) <= failures:
                raise error
            return real_read(read_uri, path)

        monkeypatch.setattr(store, "_read", read)
        return attempts

    return make


def write_batch(root: Path, count: int) -> list[str]:
    uris = []
    for i in range(count):
        path = root / "pets" / "batch_1" / f"{i}.png"
        path.write_bytes(bytes([i]))
        uris.append(str(path))
    return uris


def test_a_read_that_fails_for_a_moment_is_retried(
    store: ObjectStore, root: Path, flaky: Callable[..., list[str]]
) -> None:
    uris = write_batch(root, 5)
    attempts = flaky(uris[2], storage.ATTEMPTS - 1, OSError("Connection reset by peer"))

    results = read_all(store, uris)

    assert results == {uri: bytes([i]) for i, uri in enumerate(uris)}
    assert attempts.count(uris[2]) == storage.ATTEMPTS


def test_one_object_that_keeps_failing_is_skipped_and_the_rest_read(
    store: ObjectStore, root: Path, flaky: Callable[..., list[str]]
) -> None:
    uris = write_batch(root, 5)
    attempts = flaky(uris[2], 99, OSError("500 Internal Server Error"))

    results = read_all(store, uris)

    assert isinstance(results.pop(uris[2]), UnreadableObject)
    assert results == {uri: bytes([i]) for i, uri in enumerate(uris) if i != 2}
    assert attempts.count(uris[2]) == storage.ATTEMPTS


def test_rejected_credentials_stop_the_reads_at_once(
    store: ObjectStore, root: Path, flaky: Callable[..., list[str]]
) -> None:
    uris = write_batch(root, 5)
    attempts = flaky(uris[0], 99, PermissionError("AccessDenied"))

    with pytest.raises(StorageError) as excinfo:
        list(store.read_many(uris, concurrency=1))

    assert not isinstance(excinfo.value, UnreadableObject)
    assert "check" in str(excinfo.value)
    assert attempts.count(uris[0]) == 1


def test_a_deleted_object_is_gone_without_retries(
    store: ObjectStore, root: Path, flaky: Callable[..., list[str]]
) -> None:
    attempts = flaky("none", 0, OSError())
    gone = str(root / "pets" / "batch_1" / "deleted.png")

    assert isinstance(read_all(store, [gone])[gone], ObjectGone)
    assert attempts == [gone]


def test_a_data_root_spelled_with_dot_dot_still_reads_its_own_objects(tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    store = ObjectStore(DataSource(root_uri=f"{tmp_path}/elsewhere/../data", dataset="pets"))
    uri = store.write_bytes("batch_1/a.png", b"a")

    assert [o.key for o in store.list_batch("batch_1").objects] == ["batch_1/a.png"]
    assert store.read_bytes(uri) == b"a"
    with pytest.raises(RefusedObject):
        store.read_bytes(f"{tmp_path}/elsewhere/../data/pets/../pets/batch_1/a.png")


def test_the_limits_are_settings_that_travel_with_the_data_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from annotation_loop.settings import Settings

    monkeypatch.setenv("LOOP_MAX_ITEM_BYTES", "1000")
    monkeypatch.setenv("LOOP_MAX_IMAGE_PIXELS", "2000")
    source = Settings().data_source("aws")
    assert (source.max_item_bytes, source.max_image_pixels) == (1000, 2000)
    assert DataSource.model_validate(source.model_dump()) == source  # as a step parameter
    monkeypatch.setenv("LOOP_MAX_ITEM_BYTES", "0")
    with pytest.raises(ValueError, match="max_item_bytes"):
        Settings()
