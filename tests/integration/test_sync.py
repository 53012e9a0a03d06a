"""Sync identity: content hashes from the listing, against the real Label Studio."""

from __future__ import annotations

import httpx
import pytest

from annotation_loop.data.storage import ObjectStore
from annotation_loop.data.sync import ensure_project, sync_batch_to_project
from annotation_loop.data.task_index import TaskIndex, refresh_task_index
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.task_types import get_task_type
from annotation_loop.vision.mnist import seed_mnist_batches

pytestmark = pytest.mark.integration


def indexed_hashes(index: TaskIndex) -> set[str]:
    return {content_hash for content_hash, _ in index.items()}


def test_moved_objects_keep_their_task_and_resync_adds_nothing(services, unique_name):
    settings = services.model_copy(update={"dataset": unique_name})
    store = ObjectStore(settings.data_source("local"))
    seed_mnist_batches(store, batches=2, batch_size=10, seed=5)
    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )
    image = get_task_type("image")
    project_id = ensure_project(client, store, unique_name, settings.labels, image)

    first, index = sync_batch_to_project(client, project_id, store, "batch_1", image)
    assert (first.created, first.already_present) == (10, 0)
    again, index = sync_batch_to_project(client, project_id, store, "batch_1", image, index)
    assert again.created == 0

    # One object of batch_1 moves into batch_2, next to ten new ones.
    moved = store.list_batch("batch_1").objects[0]
    store.write_bytes("batch_2/moved.png", store.read_bytes(moved.uri))
    store.fs.rm(moved.uri)
    second, index = sync_batch_to_project(client, project_id, store, "batch_2", image, index)
    assert (second.created, second.already_present) == (10, 1)
    moved_task = next(t for t in second.tasks if t.content_hash == moved.content_hash)
    assert moved_task.task_id in {t.task_id for t in first.tasks}
    assert moved_task.uri.endswith("batch_2/moved.png"), "reads go to where the object is now"
    assert len(client.task_index(project_id)) == 20
    assert indexed_hashes(index) == client.task_index(project_id).keys()


def test_the_stored_index_follows_new_and_deleted_tasks(services, client, unique_name):
    """An index brought up to date incrementally equals a full listing, also after a task
    it covers was deleted (which forces a rebuild, so the item gets its task back)."""
    settings = services.model_copy(update={"dataset": unique_name})
    store = ObjectStore(settings.data_source("local"))
    seed_mnist_batches(store, batches=1, batch_size=6, seed=7)
    image = get_task_type("image")
    project_id = ensure_project(client, store, unique_name, settings.labels, image)
    _, index = sync_batch_to_project(client, project_id, store, "batch_1", image)
    client.import_tasks(project_id, [{"image": "/elsewhere.png", "content_hash": "md5:x"}])
    refreshed = refresh_task_index(client, project_id, index)
    assert indexed_hashes(refreshed) == client.task_index(project_id).keys()
    assert refreshed.task_count == 7 and refreshed.batches() == {"batch_1", ""}

    victim = next(refreshed.items())[1].id
    httpx.delete(
        f"{settings.label_studio_url}/api/tasks/{victim}/",
        headers={"Authorization": f"Token {settings.label_studio_api_key.get_secret_value()}"},
    ).raise_for_status()
    report, after = sync_batch_to_project(client, project_id, store, "batch_1", image, refreshed)
    assert report.created == 1, "the deleted task's item is imported again"
    assert indexed_hashes(after) == client.task_index(project_id).keys()


def test_tasks_imported_by_hand_are_left_out_of_the_index_and_the_sync(
    services, client, unique_name
):
    """Tasks the loop did not create (uploaded in the UI, imported by hand with any data)
    neither stop a sync nor stand for an item."""
    settings = services.model_copy(update={"dataset": unique_name})
    store = ObjectStore(settings.data_source("local"))
    seed_mnist_batches(store, batches=1, batch_size=4, seed=9)
    image = get_task_type("image")
    project_id = ensure_project(client, store, unique_name, settings.labels, image)
    token = settings.label_studio_api_key.get_secret_value()
    imported = httpx.post(
        f"{settings.label_studio_url}/api/projects/{project_id}/import",
        params={"return_task_ids": "true"},
        headers={"Authorization": f"Token {token}"},
        json=[
            {"image": "https://example.com/upload.png"},
            {"data": {"image": "/x.png", "content_hash": 7, "uri": ["x"], "batch": 3}},
        ],
    )
    imported.raise_for_status()

    report, index = sync_batch_to_project(client, project_id, store, "batch_1", image)
    assert (report.listed, report.created) == (4, 4)
    assert len(index) == 4 and index.task_count == 6
    refs = {ref.id: ref for ref in client.iter_task_refs(project_id)}
    assert [refs[i].content_hash for i in imported.json()["task_ids"]] == ["", ""]
    again, _ = sync_batch_to_project(client, project_id, store, "batch_1", image, index)
    assert again.created == 0 and {t.task_id for t in again.tasks} == {
        t.task_id for t in report.tasks
    }
