"""Continuous mode against the real Label Studio: the labelling queue, the label-review
queue and the learning curve, as the pipelines leave them in the project and on the model."""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
from support import png, project_tasks
from zenml.client import Client

from annotation_loop import app
from annotation_loop.app.demo import label_batch_with_oracle
from annotation_loop.data.storage import ObjectStore
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.labelstudio.queues import LABELLING_QUEUE, REVIEW_QUEUE
from annotation_loop.task_types import get_task_type

pytestmark = pytest.mark.integration

BATCH_SIZE = 60
FLIPPED = 6
# One clearly distinct colour per label, so the model's features separate the classes and
# the only label issues are the ones the test makes (the review's precision is unit-tested
# and benchmarked).
PALETTE = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (0, 0, 0),
    (255, 255, 255),
]


def seed_colour_batches(store: ObjectStore, batches: int) -> dict[str, str]:
    """batch_N/ of small PNGs, label = the index of its colour (slightly varied)."""
    rng = random.Random(0)
    truth = {}
    for batch in range(1, batches + 1):
        for i in range(BATCH_SIZE):
            label = (i * 7 + batch) % 10
            colour = tuple(min(255, max(0, c + rng.randint(-12, 12))) for c in PALETTE[label])
            key = f"batch_{batch}/{i:03d}.png"
            store.write_bytes(key, png(colour))
            truth[key] = str(label)
    return truth


def view_task_ids(settings: Any, project_id: int, title: str) -> list[int]:
    """The task ids a saved Data Manager tab shows, in its order."""
    with httpx.Client(
        base_url=settings.label_studio_url,
        headers={"Authorization": f"Token {settings.label_studio_api_key.get_secret_value()}"},
        timeout=60,
    ) as ls:
        (view,) = [
            v
            for v in ls.get("/api/dm/views/", params={"project": project_id}).json()
            if v["data"]["title"] == title
        ]
        body = ls.get(
            "/api/tasks", params={"view": view["id"], "page_size": 1000, "fields": "all"}
        ).json()
    return [task["id"] for task in body["tasks"]]


def test_queues_and_learning_curve(cloud_settings, run_cli):
    settings = cloud_settings("local")
    store = ObjectStore(settings.data_source("local"))
    store.ensure_bucket()
    truth = seed_colour_batches(store, batches=3)
    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )
    project_id = client.get_or_create_project(
        settings.project_name, get_task_type("image").label_config(settings.labels)
    )

    # An annotator who gets a few labels wrong: the review queue should catch them.
    synced = app.infer("local", settings, rerun=False)
    wrong = {}
    for task in synced.tasks[:FLIPPED]:
        key = task.uri.removeprefix(settings.data_source("local").dataset_uri + "/")
        wrong[task.task_id] = truth[key]
        truth = {**truth, key: str((int(truth[key]) + 5) % 10)}
    label_batch_with_oracle(client, settings, "local", synced, truth)
    trained = app.train("local", settings, rerun=True)
    assert trained.model_version == "1"

    review_version = f"{settings.model_name}:1 review"
    flagged = {
        task["id"]: prediction
        for task in project_tasks(settings, project_id)
        for prediction in task["predictions"]
        if prediction["model_version"] == review_version
    }
    caught = set(flagged) & set(wrong)
    assert len(caught) >= FLIPPED // 2, (sorted(flagged), sorted(wrong))
    assert len(flagged) <= 3 * FLIPPED, "the review queue must not drown the real issues"
    image = get_task_type("image")
    for task_id in caught:
        suggested = image.target_from_result(
            flagged[task_id]["result"], "", settings.labels, where=f"task {task_id}"
        )
        assert suggested == wrong[task_id], "the suggestion is the true label"
    assert sorted(view_task_ids(settings, project_id, REVIEW_QUEUE)) == sorted(flagged)
    annotations = {t["id"]: t["annotations"] for t in project_tasks(settings, project_id)}
    assert all(len(annotations[task_id]) == 1 for task_id in wrong), "nothing is changed"

    # The next batch's pre-annotations are the labelling queue: unlabelled, lowest score first.
    inferred = app.infer("local", settings, rerun=True)
    queue = view_task_ids(settings, project_id, LABELLING_QUEUE)
    labelled = {t.task_id for t in synced.tasks}  # colours can repeat across batches
    assert sorted(queue) == sorted({t.task_id for t in inferred.tasks} - labelled)
    scores = {
        t["id"]: t["predictions"][0]["score"]
        for t in project_tasks(settings, project_id)
        if t["id"] in queue
    }
    assert [scores[t] for t in queue] == sorted(scores[t] for t in queue)
    project = client.transport.request("GET", f"/api/projects/{project_id}/", repeatable=True)
    assert project["sampling"] == "Uncertainty sampling"
    assert project["model_version"] == f"{settings.model_name}:1"

    # A second round: the learning curve has two points, on the model version and the CLI.
    label_batch_with_oracle(client, settings, "local", inferred, truth)
    second = app.train("local", settings, rerun=True)
    assert second.model_version == "2"
    curve = Client().get_model_version(settings.model_name, "2").run_metadata["learning_curve"]
    labels = [trained.labelled_items, second.labelled_items]
    assert [p["labels"] for p in curve["points"]] == labels
    assert labels[1] > labels[0]
    assert curve["advice"].startswith("Too early to tell")
    printed = run_cli("curve", env=settings.environment())
    assert printed.returncode == 0, printed.stderr
    rows = [line.split() for line in printed.stdout.splitlines()[2:4]]
    assert [row[:2] for row in rows] == [["1", str(labels[0])], ["2", str(labels[1])]]
