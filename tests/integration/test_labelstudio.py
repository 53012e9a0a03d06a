"""The Label Studio client against a real Label Studio (and SeaweedFS for the S3 source)."""

import hashlib
import sqlite3
from datetime import timedelta
from typing import Any

import boto3
import httpx
import pytest
from support import CONFIG, png

from annotation_loop.dev.services import LabelStudioServer
from annotation_loop.errors import (
    LabelStudioAuthError,
    LabelStudioHTTPError,
    LabelStudioUnreachable,
)
from annotation_loop.labelstudio import LabelStudioClient, PredictionIn
from annotation_loop.learning.annotations import AnnotationSnapshot, merge_changes
from annotation_loop.settings import DEMO_S3_ACCESS_KEY, DEMO_S3_SECRET_KEY, Settings

pytestmark = pytest.mark.integration


def result(label: str) -> list[dict[str, Any]]:
    return [
        {"from_name": "label", "to_name": "image", "type": "choices", "value": {"choices": [label]}}
    ]


def task_data(i: int, batch: str = "batch_1") -> dict[str, Any]:
    uri = f"s3://bucket/{batch}/{i}.png"
    return {
        "image": uri,
        "uri": uri,
        "batch": batch,
        "content_hash": hashlib.sha256(uri.encode()).hexdigest(),
    }


def api(services: Settings) -> httpx.Client:
    """Raw API access, for what the loop never does (reading a task as the UI does)."""
    token = services.label_studio_api_key.get_secret_value()
    return httpx.Client(
        base_url=services.label_studio_url, headers={"Authorization": f"Token {token}"}
    )


def test_get_or_create_project_is_idempotent_and_matches_the_exact_title(
    client: LabelStudioClient, unique_name: str
) -> None:
    title = unique_name[:40]  # Label Studio titles hold at most 50 characters
    first = client.get_or_create_project(title, CONFIG)
    longer = client.get_or_create_project(title + "-more", CONFIG)
    try:
        assert client.get_or_create_project(title, CONFIG) == first
        assert longer != first, "a title containing another one is another project"
        assert client.get_or_create_project(title + "-more", CONFIG) == longer
        # A new label is applied to the existing project.
        with_bird = CONFIG.replace(
            '<Choice value="dog"/>', '<Choice value="dog"/><Choice value="bird"/>'
        )
        assert client.get_or_create_project(title, with_bird) == first
        [task_id] = client.import_tasks(first, [task_data(0)])
        client.create_annotation(task_id, result("cat"))
        # Renaming the control its annotations use is refused, in one line.
        with pytest.raises(LabelStudioHTTPError) as exc:
            client.get_or_create_project(title, CONFIG.replace('"label"', '"digit"'))
        assert (exc.value.status, exc.value.method) == (400, "PATCH")
        assert "label config" in str(exc.value) and "\n" not in str(exc.value)
    finally:
        client.delete_project(first)
        client.delete_project(longer)


def test_imported_tasks_are_indexed_by_content_hash(
    client: LabelStudioClient, project: int
) -> None:
    tasks = [task_data(i) for i in range(2500)]
    ids = client.import_tasks(project, tasks, chunk_size=1000)
    assert len(set(ids)) == 2500

    index = client.task_index(project)
    assert set(index) == {t["content_hash"] for t in tasks}
    for task_id, data in zip(ids, tasks, strict=True):
        ref = index[data["content_hash"]]
        assert (ref.id, ref.uri, ref.batch) == (task_id, data["uri"], "batch_1")


def test_predictions_are_imported_in_bulk_and_found_by_exact_model_version(
    client: LabelStudioClient, project: int
) -> None:
    ids = client.import_tasks(project, [task_data(i) for i in range(30)])
    v1 = [PredictionIn(t, result("cat"), 0.9, "model:1") for t in ids[:12]]
    # "model:1" is a substring of "model:10": the lookup must not confuse them.
    v10 = [PredictionIn(t, result("dog"), 0.8, "model:10") for t in ids[10:20]]
    assert client.import_predictions(project, v1 + v10, chunk_size=7) == 22

    assert client.task_ids_with_prediction(project, "model:1") == set(ids[:12])
    assert client.task_ids_with_prediction(project, "model:10") == set(ids[10:20])
    assert client.task_ids_with_prediction(project, "model:1", ids[5:25]) == set(ids[5:12])
    assert client.task_ids_with_prediction(project, "model:2") == set()


def test_only_tasks_changed_after_the_watermark_are_fetched(
    services: Settings, client: LabelStudioClient, project: int
) -> None:
    ids = client.import_tasks(project, [task_data(i) for i in range(20)])
    first_annotations = [client.create_annotation(t, result("cat")) for t in ids[:3]]

    before = list(client.iter_tasks_updated_since(project, None))
    assert sorted(t.id for t in before) == ids[:3], "only annotated tasks, all of them"
    annotation = before[0].annotations[0]
    assert annotation["result"] == result("cat") and annotation["was_cancelled"] is False
    assert {"created_at", "updated_at", "completed_by"} <= set(annotation)
    watermark = max(t.updated_at for t in before)

    client.create_annotation(ids[5], result("dog"))
    client.create_annotation(ids[6], result("cat"))
    client.import_tasks(project, [task_data(i, "batch_2") for i in range(5)])  # unannotated
    client.import_predictions(project, [PredictionIn(ids[7], result("cat"), 0.5, "m")])
    exact = timedelta(0)
    changed = list(client.iter_tasks_updated_since(project, watermark, overlap=exact))
    assert [t.id for t in changed] == [ids[5], ids[6]]
    assert changed[0].updated_at > watermark
    # By default the fetch also re-reads the minutes before the watermark (late commits).
    again = [t.id for t in client.iter_tasks_updated_since(project, watermark)]
    assert again == [*ids[:3], ids[5], ids[6]]

    # A task that loses its annotation comes back, with none.
    with api(services) as raw:
        raw.delete(f"/api/annotations/{first_annotations[0]}/").raise_for_status()
    latest = max(t.updated_at for t in changed)
    [emptied] = client.iter_tasks_updated_since(project, latest, overlap=exact)
    assert (emptied.id, emptied.annotations) == (ids[0], [])


def test_a_change_committed_late_is_still_fetched(
    services: Settings, client: LabelStudioClient, project: int
) -> None:
    """A change stamped before the watermark but committed after the fetch that set it (a
    long transaction) is caught by the next fetch, and what was fetched before is not new."""
    ids = client.import_tasks(project, [task_data(i) for i in range(3)])
    client.create_annotation(ids[1], result("cat"))
    first = merge_changes(
        AnnotationSnapshot(project_id=project, task="image", labels=("cat", "dog")),
        client.iter_tasks_updated_since(project, None),
    )
    assert first.watermark is not None and set(first.items) == {ids[1]}

    client.create_annotation(ids[0], result("dog"))
    # What the late commit leaves behind: the change stamped a minute before the watermark.
    stamped = (first.watermark - timedelta(minutes=1)).strftime("%Y-%m-%d %H:%M:%S.%f")
    database = LabelStudioServer(services).data_dir / "label_studio.sqlite3"
    with sqlite3.connect(database, timeout=30) as db:
        db.execute("UPDATE task SET updated_at = ? WHERE id = ?", (stamped, ids[0]))
    db.close()

    missed = client.iter_tasks_updated_since(project, first.watermark, overlap=timedelta(0))
    assert [t.id for t in missed] == [], "a fetch from the watermark alone misses it"
    second = merge_changes(first, client.iter_tasks_updated_since(project, first.watermark))
    assert second.items[ids[0]].target == "dog"
    merge = second.last_merge
    assert (merge.added, merge.late, merge.unchanged, merge.changed) == (1, 1, 1, 1)
    third = merge_changes(second, client.iter_tasks_updated_since(project, second.watermark))
    assert third.last_merge.changed == 0 and third.items == second.items


def test_small_pages_fetch_every_changed_task_once(client: LabelStudioClient, project: int) -> None:
    ids = client.import_tasks(project, [task_data(i) for i in range(7)])
    for task_id in ids:
        client.create_annotation(task_id, result("dog"))
    fetched = [t.id for t in client.iter_tasks_updated_since(project, None, page_size=2)]
    assert fetched == ids


def test_tasks_changed_at_one_instant_are_all_fetched(
    services: Settings, client: LabelStudioClient, project: int
) -> None:
    """The Data Manager's "Create annotations from predictions" stamps every task with the
    same `updated_at`: paging by `updated_at` must still step through them all."""
    ids = client.import_tasks(project, [task_data(i) for i in range(7)])
    client.import_predictions(project, [PredictionIn(t, result("cat"), 0.5, "m") for t in ids])
    with api(services) as raw:
        raw.post(
            "/api/dm/actions",
            params={"id": "predictions_to_annotations", "project": project},
            json={"selectedItems": {"all": True, "excluded": []}, "model_version": "m"},
        ).raise_for_status()
    fetched = list(client.iter_tasks_updated_since(project, None, page_size=2))
    assert len({t.updated_at for t in fetched}) == 1, "one instant, as the test intends"
    assert sorted(t.id for t in fetched) == ids


def test_skipped_tasks_come_with_cancelled_annotations(
    client: LabelStudioClient, project: int
) -> None:
    ids = client.import_tasks(project, [task_data(i) for i in range(3)])
    client.import_predictions(project, [PredictionIn(ids[0], result("cat"), 0.7, "m")])
    client.create_annotation(ids[1], [], was_cancelled=True)

    [skipped] = client.iter_tasks_updated_since(project, None)
    assert skipped.id == ids[1]
    assert [a["was_cancelled"] for a in skipped.annotations] == [True]


def test_annotation_keeps_its_parent_prediction(client: LabelStudioClient, project: int) -> None:
    [task_id] = client.import_tasks(project, [task_data(0)])
    client.import_predictions(project, [PredictionIn(task_id, result("cat"), 0.7, "m")])
    client.create_annotation(task_id, result("dog"))  # makes the task visible to the fetch
    [task] = client.iter_tasks_updated_since(project, None)
    prediction_id = task.predictions[0]["id"]
    client.create_annotation(task_id, result("cat"), parent_prediction=prediction_id)
    [task] = client.iter_tasks_updated_since(project, None)
    assert [a.get("parent_prediction") for a in task.annotations] == [None, prediction_id]
    assert task.predictions[0]["model_version"] == "m"


def test_a_wrong_api_key_is_an_auth_error(services: Settings) -> None:
    with pytest.raises(LabelStudioAuthError) as exc:
        LabelStudioClient(services.label_studio_url, "0" * 40).check()
    assert "LOOP_LABEL_STUDIO_API_KEY" in str(exc.value)


def test_an_unreachable_server_is_named(services: Settings) -> None:
    url = "http://127.0.0.1:9"  # discard: nothing listens there
    with pytest.raises(LabelStudioUnreachable) as exc:
        LabelStudioClient(url, "token").check()
    assert url in str(exc.value) and "run.py up" in str(exc.value)


def test_a_personal_access_token_works(services: Settings, unique_name: str) -> None:
    with api(services) as raw:
        response = raw.post("/api/token/")
        response.raise_for_status()
        token = response.json()["token"]
        try:
            client = LabelStudioClient(services.label_studio_url, token)
            client.check()
            project_id = client.get_or_create_project(unique_name, CONFIG)
            client.delete_project(project_id)
        finally:
            raw.post("/api/token/blacklist/", json={"refresh": token})


def test_s3_source_connects_once_and_resolves_task_images(
    services: Settings, client: LabelStudioClient, project: int, unique_name: str
) -> None:
    s3 = boto3.client(
        "s3",
        endpoint_url=services.local_s3_endpoint_url,
        aws_access_key_id=DEMO_S3_ACCESS_KEY,
        aws_secret_access_key=DEMO_S3_SECRET_KEY,
        region_name="us-east-1",
    )
    image = png((200, 10, 10))
    s3.create_bucket(Bucket=unique_name)
    s3.put_object(Bucket=unique_name, Key="digits/batch_1/a.png", Body=image)

    def connect() -> int:
        return client.connect_s3_source(
            project,
            bucket=unique_name,
            prefix="digits",
            endpoint_url=services.local_s3_endpoint_url,
            access_key=DEMO_S3_ACCESS_KEY,
            secret_key=DEMO_S3_SECRET_KEY,
            region="us-east-1",
        )

    storage_id = connect()
    assert connect() == storage_id
    uri = f"s3://{unique_name}/digits/batch_1/a.png"
    [task_id] = client.import_tasks(project, [{**task_data(0), "image": uri, "uri": uri}])

    with api(services) as raw:
        shown = raw.get(f"/api/tasks/{task_id}/").json()["data"]["image"]
        assert shown.startswith(f"/tasks/{task_id}/resolve/")
        # Label Studio redirects to a presigned URL of the S3 server.
        fetched = raw.get(shown, follow_redirects=True)
    assert fetched.status_code == 200 and fetched.content == image
    assert str(fetched.url).startswith(services.local_s3_endpoint_url)
    assert client.task_index(project)[task_data(0)["content_hash"]].uri == uri


def test_local_source_connects_once_and_serves_task_images(
    services: Settings, client: LabelStudioClient, project: int, unique_name: str
) -> None:
    folder = services.local_data_root / unique_name
    (folder / "batch_1").mkdir(parents=True)
    image = png((10, 200, 10))
    (folder / "batch_1" / "a.png").write_bytes(image)

    storage_id = client.connect_local_source(project, folder)
    assert client.connect_local_source(project, folder) == storage_id
    url = f"/data/local-files/?d={unique_name}/batch_1/a.png"
    [task_id] = client.import_tasks(project, [{**task_data(0), "image": url}])

    with api(services) as raw:
        shown = raw.get(f"/api/tasks/{task_id}/").json()["data"]["image"]
        fetched = raw.get(shown)
    assert fetched.status_code == 200 and fetched.content == image
