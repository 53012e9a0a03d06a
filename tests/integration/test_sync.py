"""Sync identity: content hashes from the listing, against the real Label Studio."""

from __future__ import annotations

import pytest

from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.storage import ObjectStore
from annotation_loop.sync import ensure_project, sync_batch_to_project
from annotation_loop.task_types import get_task_type
from annotation_loop.vision.mnist import seed_mnist_batches

pytestmark = pytest.mark.integration


def test_moved_objects_keep_their_task_and_resync_adds_nothing(services, unique_name):
    settings = services.model_copy(update={"dataset": unique_name})
    store = ObjectStore(settings.data_source("local"))
    seed_mnist_batches(store, batches=2, batch_size=10, seed=5)
    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )
    image = get_task_type("image")
    project_id = ensure_project(client, store, unique_name, settings.labels, image)

    first = sync_batch_to_project(client, project_id, store, "batch_1", image)
    assert (first.created, first.already_present) == (10, 0)
    assert sync_batch_to_project(client, project_id, store, "batch_1", image).created == 0

    # One object of batch_1 moves into batch_2, next to ten new ones.
    moved = store.list_batch("batch_1").objects[0]
    store.write_bytes("batch_2/moved.png", store.read_bytes(moved.uri))
    store.fs.rm(moved.uri)
    second = sync_batch_to_project(client, project_id, store, "batch_2", image)
    assert (second.created, second.already_present) == (10, 1)
    moved_task = next(t for t in second.tasks if t.content_hash == moved.content_hash)
    assert moved_task.task_id in {t.task_id for t in first.tasks}
    assert moved_task.uri.endswith("batch_2/moved.png"), "reads go to where the object is now"
    assert len(client.task_index(project_id)) == 20
