"""The loop's Label Studio side at project scale (10k, 50k, 100k tasks), beside its peers.

    make bench                      # also runs this, at 10k, 50k and 100k tasks
    make bench ARGS=--quick         # 2k tasks, one repeat
    python -m benchmarks.scale --scales 10000,50000 --repeats 3

Per scale, on a Label Studio of its own (a fresh data dir, deleted afterwards) and in a
throw-away bucket of tiny `.png` objects (a sync never reads them, so their bytes do not
matter, only that each is distinct):
- sync of N new objects vs Label Studio's raw bulk import of the same tasks in one request;
- re-sync of the unchanged bucket, from the index the first sync stored;
- N pre-annotations in bulk vs one request per task (a sample of 200);
- fetching 100 new annotations in a project with 20% of its tasks labelled, incrementally vs
  ZenML's `get_labeled_data` (the legacy SDK's `get_labeled_tasks()`, which reads all);
- how far the process's resident memory peaks above its start in each of those (peak RSS,
  as a step's process would see it), and in ranking N predictions for labelling (synthetic
  predictions with EfficientNet-Lite0-sized embeddings) beside keeping every embedding.
Results are printed and written to benchmarks/results/scale.json.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from unittest.mock import patch

import click
import httpx
import numpy as np

from annotation_loop.data.storage import DataSource, ObjectStore
from annotation_loop.data.sync import sync_batch_to_project
from annotation_loop.data.task_index import TaskIndex
from annotation_loop.data.task_predictions import TaskPrediction, TaskPredictions
from annotation_loop.dev.services import start_services, stop_services
from annotation_loop.labelstudio import LabelStudioClient, PredictionIn
from annotation_loop.labelstudio.queues import LabellingOrder
from annotation_loop.learning.active_learning import RankingConfig, rank_for_labelling
from annotation_loop.learning.annotations import AnnotationSnapshot, merge_changes
from annotation_loop.settings import DEMO_S3_ACCESS_KEY, DEMO_S3_SECRET_KEY, Settings
from annotation_loop.task_types import Prediction, get_task_type
from annotation_loop.task_types.choices import result_for_label
from benchmarks.figures import Row, median_rate, peak_rss_growth_mib, report, timed

RESULTS = Path(__file__).parent / "results" / "scale.json"
LABELLED_SHARE = 0.2
NEW_ANNOTATIONS = 100
SINGLE_REQUESTS = 200
EMBEDDING_SIZE = 1280  # EfficientNet-Lite0's pooled features
RANKING_BATCH = 256  # predictions per model batch, as on a GPU
IMAGE = get_task_type("image")


def auth(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Token {settings.label_studio_api_key.get_secret_value()}"}


def local_client() -> LabelStudioClient:
    settings = Settings()
    return LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )


def bucket_store(bucket: str) -> ObjectStore:
    endpoint = Settings().local_s3_endpoint_url
    return ObjectStore(
        DataSource(root_uri=f"s3://{bucket}", dataset="items", endpoint_url=endpoint)
    )


# What the memory rows run, each in a fresh process (benchmarks.figures.peak_rss_growth_mib):
# plain arguments only, so that they pickle.
def sync_bucket(project: int, source: DataSource, index_file: Path | None) -> None:
    """A sync step's work: load the last index (a file, as from the artifact store), sync,
    and store the new index and the task list."""
    index = None
    if index_file is not None:
        with index_file.open("rb") as stored:
            index = TaskIndex.load(stored)
    report, index = sync_batch_to_project(
        local_client(), project, ObjectStore(source), "batch_1", IMAGE, index
    )
    with tempfile.TemporaryFile() as stored_index, tempfile.TemporaryFile() as stored_tasks:
        index.dump(stored_index)
        report.tasks.dump(stored_tasks)


def upload_predictions(project: int, model_version: str, predictions_file: Path) -> None:
    """The upload step's work: load the predictions (a file, as from the artifact store) and
    push them, a chunk at a time."""
    with predictions_file.open("rb") as stored:
        predictions = TaskPredictions.load(stored)
    local_client().import_predictions(
        project,
        (PredictionIn(p.task_id, p.result, p.score, model_version) for p in predictions),
        total=len(predictions),
    )


def fetch_changes(previous: AnnotationSnapshot) -> None:
    fresh = merge_changes(
        previous, local_client().iter_tasks_updated_since(previous.project_id, previous.watermark)
    )
    assert fresh.last_merge.added == NEW_ANNOTATIONS, fresh.last_merge


def synthetic_predictions(count: int) -> Iterator[Prediction]:
    """Predictions as a model hands them over: embeddings are rows of each batch's array."""
    rng = np.random.default_rng(0)
    for start in range(0, count, RANKING_BATCH):
        uncertainty = rng.random(min(RANKING_BATCH, count - start))
        embeddings = rng.standard_normal((len(uncertainty), EMBEDDING_SIZE)).astype(np.float16)
        for offset, (u, embedding) in enumerate(zip(uncertainty, embeddings, strict=True)):
            yield Prediction(str(start + offset), "0", 1.0 - u / 2, float(u), embedding)


def rank_streamed(count: int) -> None:
    """The inference step's ranking: predictions added as they come."""
    order = LabellingOrder(RankingConfig())
    for prediction in synthetic_predictions(count):
        order.add(prediction)
    order.scores()


def rank_with_every_embedding(count: int) -> None:
    """The peer: every prediction, embedding and all, kept until the batch is ranked."""
    predictions = list(synthetic_predictions(count))
    rank_for_labelling(
        np.array([p.uncertainty for p in predictions]),
        [p.embedding for p in predictions if p.embedding is not None],
        RankingConfig(),
    )


def measure_ranking(count: int) -> list[Row]:
    return [
        Row(
            f"{count}: rank predictions, peak RSS growth",
            peak_rss_growth_mib(rank_streamed, count),
            "MiB",
            peak_rss_growth_mib(rank_with_every_embedding, count),
            "every embedding kept",
        )
    ]


def write_objects(store: ObjectStore, count: int) -> None:
    """`count` distinct tiny objects under batch_1/, written concurrently by s3fs."""
    base = store.uri_for("batch_1").split("://", 1)[1]
    store.fs.pipe({f"{base}/{i:07d}.png": f"object {i}".encode() for i in range(count)})


def measure_sync(
    client: LabelStudioClient, store: ObjectStore, config: str, count: int, repeats: int
) -> tuple[list[Row], int]:
    """Sync and re-sync rows; returns them and a synced project, for the caller's next
    measures (the caller disposes of it)."""
    sync_runs, resync_runs, raw_runs = [], [], []
    project = 0
    for _ in range(repeats):
        project = client.get_or_create_project(f"scale sync {uuid.uuid4().hex[:6]}", config)
        started = time.perf_counter()
        _, index = sync_batch_to_project(client, project, store, "batch_1", IMAGE)
        sync_runs.append(time.perf_counter() - started)
        resync_runs.append(
            timed(sync_batch_to_project, client, project, store, "batch_1", IMAGE, index)
        )
        if len(sync_runs) < repeats:  # the last one is left for the memory runs and the caller
            client.delete_project(project)
        raw = client.get_or_create_project(f"scale raw {uuid.uuid4().hex[:6]}", config)
        tasks = [IMAGE.task_data(item, store) for item in IMAGE.list_items(store, "batch_1").items]
        raw_runs.append(timed(client.import_tasks, raw, tasks, chunk_size=len(tasks)))
        client.delete_project(raw)
    with tempfile.TemporaryDirectory() as scratch:
        index_file = Path(scratch) / "task_index.sqlite"
        with index_file.open("wb") as stored:
            index.dump(stored)
        resync_peak = peak_rss_growth_mib(sync_bucket, project, store.source, index_file)
    fresh = client.get_or_create_project(f"scale sync {uuid.uuid4().hex[:6]}", config)
    sync_peak = peak_rss_growth_mib(sync_bucket, fresh, store.source, None)
    client.delete_project(fresh)
    rows = [
        Row(
            f"{count}: sync new objects",
            median_rate(count, sync_runs),
            "tasks/s",
            median_rate(count, raw_runs),
            "raw import, 1 request",
        ),
        Row(f"{count}: sync peak RSS growth", sync_peak, "MiB"),
        Row(f"{count}: re-sync unchanged", statistics.median(resync_runs), "s"),
        Row(f"{count}: re-sync peak RSS growth", resync_peak, "MiB"),
    ]
    return rows, project


def measure_predictions(
    client: LabelStudioClient, settings: Settings, project: int, repeats: int
) -> list[Row]:
    task_ids = sorted(ref.id for ref in client.iter_task_refs(project))
    result = result_for_label("0", "image")
    bulk_runs = [
        timed(
            client.import_predictions,
            project,
            [PredictionIn(t, result, 0.5, f"scale:{n}") for t in task_ids],
        )
        for n in range(repeats)
    ]
    with tempfile.TemporaryDirectory() as scratch:
        predictions = TaskPredictions()
        predictions.add(TaskPrediction(t, result, 0.5) for t in task_ids)
        predictions_file = Path(scratch) / "predictions.sqlite"
        with predictions_file.open("wb") as stored:
            predictions.dump(stored)
        peak = peak_rss_growth_mib(upload_predictions, project, "scale:memory", predictions_file)

    def one_by_one() -> None:
        with httpx.Client(
            base_url=settings.label_studio_url,
            headers=auth(settings),
            timeout=60,
        ) as http:
            for task in task_ids[:SINGLE_REQUESTS]:
                http.post(
                    "/api/predictions/",
                    json={"task": task, "result": result, "score": 0.5, "model_version": "one"},
                ).raise_for_status()

    return [
        Row(
            f"{len(task_ids)}: upload pre-annotations",
            median_rate(len(task_ids), bulk_runs),
            "predictions/s",
            SINGLE_REQUESTS / timed(one_by_one),
            "one request per task",
        ),
        Row(f"{len(task_ids)}: upload peak RSS growth", peak, "MiB"),
    ]


@contextmanager
def private_label_studio() -> Iterator[Settings]:
    """A Label Studio of the benchmark's own, on a fresh data dir and a free port, stopped and
    deleted afterwards. Deleting a 100k-task project with predictions through the API takes
    Label Studio on SQLite minutes, or fails (Django's cascade sends one UPDATE with a
    variable per row); and the demo's server stays as it was. The settings go through the
    environment, so that the fresh processes of the memory rows use this server too."""
    state = Path(tempfile.mkdtemp(prefix="loop-bench-"))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    private = {"LOOP_STATE_DIR": str(state), "LOOP_LABEL_STUDIO_URL": f"http://127.0.0.1:{port}"}
    with patch.dict(os.environ, private):
        settings = Settings()
        try:
            start_services(settings, ("label_studio",))
            _warm_up(settings)
            yield settings
        finally:
            stop_services(settings, ("label_studio",))
            shutil.rmtree(state, ignore_errors=True)


def _warm_up(settings: Settings) -> None:
    """A fresh server's first imports pay for Django's and SQLite's start: paid here, so that
    the sync (measured first) and the raw import after it meet the same server."""
    client = local_client()
    project = client.get_or_create_project("warm-up", IMAGE.label_config(settings.labels))
    client.import_tasks(project, [{"image": f"/warm/{i}.png"} for i in range(2000)], chunk_size=500)
    client.delete_project(project)


def measure_fetch(
    client: LabelStudioClient, settings: Settings, config: str, count: int, repeats: int
) -> list[Row]:
    """A project with 20% labelled (imported with their annotations), then 100 new ones."""
    project = client.get_or_create_project(f"scale fetch {uuid.uuid4().hex[:6]}", config)
    labelled = int(count * LABELLED_SHARE)
    result = result_for_label("1", "image")
    tasks = [
        {"data": {"image": f"/x/{i}.png", "uri": f"s3://x/{i}.png", "content_hash": f"md5:{i}"}}
        | ({"annotations": [{"result": result}]} if i < labelled else {})
        for i in range(count)
    ]
    with httpx.Client(base_url=settings.label_studio_url, headers=auth(settings)) as http:
        for start in range(0, count, 10_000):  # the bulk import, with the annotations
            http.post(
                f"/api/projects/{project}/import", json=tasks[start : start + 10_000], timeout=600
            ).raise_for_status()
    ids = sorted(ref.id for ref in client.iter_task_refs(project))
    previous = merge_changes(
        AnnotationSnapshot(project_id=project, task="image", labels=tuple(settings.labels)),
        client.iter_tasks_updated_since(project, None),
    )
    for task in ids[labelled : labelled + NEW_ANNOTATIONS]:
        client.create_annotation(task, result)

    def ours() -> None:
        fresh = merge_changes(
            previous, client.iter_tasks_updated_since(project, previous.watermark)
        )
        assert fresh.last_merge.added == NEW_ANNOTATIONS, fresh.last_merge

    def zenml_get_labeled_data() -> None:
        from label_studio_sdk import Client

        legacy = Client(settings.label_studio_url, settings.label_studio_api_key.get_secret_value())
        assert len(legacy.get_project(project).get_labeled_tasks()) == labelled + NEW_ANNOTATIONS

    ours_runs = [timed(ours) for _ in range(repeats)]
    peer_runs = [timed(zenml_get_labeled_data) for _ in range(repeats)]
    peak = peak_rss_growth_mib(fetch_changes, previous)
    return [
        Row(
            f"{count}: fetch {NEW_ANNOTATIONS} new of {labelled} labelled",
            statistics.median(ours_runs),
            "s",
            statistics.median(peer_runs),
            "ZenML get_labeled_data",
        ),
        Row(f"{count}: fetch peak RSS growth", peak, "MiB"),
    ]


@click.command()
@click.option("--quick", is_flag=True, help="2,000 tasks, one repeat.")
@click.option("--scales", default="10000,50000,100000", show_default=True)
@click.option("--repeats", default=3, show_default=True)
def main(quick: bool, scales: str, repeats: int) -> None:
    counts = [2000] if quick else [int(n) for n in scales.split(",")]
    repeats = 1 if quick else repeats
    settings = Settings()
    os.environ.update(
        AWS_ACCESS_KEY_ID=DEMO_S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY=DEMO_S3_SECRET_KEY
    )
    start_services(settings, ("s3",))
    config = IMAGE.label_config(settings.labels)
    rows: list[Row] = []
    for count in counts:
        first_row = len(rows)
        bucket = f"scale-{uuid.uuid4().hex[:8]}"
        store = bucket_store(bucket)
        store.fs.mkdir(bucket)
        click.echo(f"{count}: writing objects ...")
        write_objects(store, count)
        click.echo(f"{count}: starting a Label Studio of its own ...")
        with private_label_studio() as private:
            client = local_client()
            click.echo(f"{count}: sync ...")
            sync_rows, project = measure_sync(client, store, config, count, repeats)
            rows += sync_rows
            click.echo(f"{count}: pre-annotations ...")
            rows += measure_predictions(client, private, project, repeats)
            click.echo(f"{count}: annotation fetch ...")
            rows += measure_fetch(client, private, config, count, repeats)
        click.echo(f"{count}: ranking ...")
        rows += measure_ranking(count)
        store.fs.rm(bucket, recursive=True)
        for row in rows[first_row:]:
            click.echo(
                f"  {row.measure}: {row.ours:.2f} {row.unit}"
                + (f" (peer {row.peer:.2f})" if row.peer else "")
            )

    report(rows, RESULTS, {"repeats": repeats, "at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"})


if __name__ == "__main__":
    main()
