"""Which batch an inference run syncs."""

from pathlib import Path

import pytest

from annotation_loop.data.storage import DataSource, ObjectStore
from annotation_loop.data.sync import choose_batch
from annotation_loop.errors import StorageError

BATCHES = ["batch_1", "batch_2", "batch_3"]


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(DataSource(root_uri=str(tmp_path), dataset="mnist"))


def test_a_first_run_takes_batch_1_and_a_rerun_the_first_not_synced(store: ObjectStore) -> None:
    assert choose_batch(store, BATCHES, {"batch_1"}, rerun=False) == "batch_1"
    assert choose_batch(store, BATCHES, {"batch_1"}, rerun=True) == "batch_2"
    assert choose_batch(store, BATCHES, set(BATCHES), rerun=True) is None


def test_a_requested_batch_is_synced_again_even_if_it_was(store: ObjectStore) -> None:
    # A sync whose listing was cut short leaves its batch counted as synced: asking for it by
    # name is how the rest is added.
    assert choose_batch(store, BATCHES, set(BATCHES), rerun=True, requested="batch_2") == "batch_2"


def test_an_unknown_requested_batch_stops_with_the_ones_there(store: ObjectStore) -> None:
    with pytest.raises(StorageError, match=r"No batch_9/ .*batch_1, batch_2, batch_3"):
        choose_batch(store, BATCHES, set(), rerun=False, requested="batch_9")
