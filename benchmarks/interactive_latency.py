"""How long an annotator waits for an interactive answer: `/predict` with one region in
`params.context`, over HTTP to the ML backend app under uvicorn on 127.0.0.1 with basic
auth, as Label Studio sends it (Label Studio's own hop is not counted), for each task type
that answers regions (NER, detection, transcription).

Each task type's model is trained briefly on its own demo data (latency does not depend on
how well it is trained; transcription's pocketsphinx needs no training), with the
production settings of configs/<task>/. Each request is one held-out item with one of its
true regions (a span, a box, a speech segment) as the annotator's.

    python -m benchmarks.interactive_latency [--requests 50] [ner detection transcription]
"""

from __future__ import annotations

import socket
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

import click
import httpx
import uvicorn
from pydantic import SecretStr

from annotation_loop.configs import load_training_parameters
from annotation_loop.data.storage import DataSource, ObjectStore
from annotation_loop.learning.accelerator import best_device
from annotation_loop.ml_backend import ModelHolder, ServedModel, create_app
from annotation_loop.ml_backend.auth import BackendCredentials
from annotation_loop.task_types import TaskType, demo_data_of, get_task_type
from benchmarks.task_type_models import demo_examples

# A short fine-tune: enough for a model of the production shape.
QUICK_TRAINING: dict[str, dict[str, Any]] = {
    "ner": {"epochs": 1},
    "detection": {"epochs": 1},
    "transcription": {},  # pocketsphinx: nothing to fit
}
TRAINING_ITEMS = 32
WARM_UP_REQUESTS = 3
CREDENTIALS = BackendCredentials("label-studio", SecretStr("benchmark"), SecretStr("hook"))
CREDENTIALS_AUTH = ("label-studio", "benchmark")


class StaticSource:
    """The one model the benchmark serves, as the production version."""

    def __init__(self, served: ServedModel) -> None:
        self.served = served

    def production_version(self) -> str:
        return "1"

    def load(self, version: str) -> ServedModel:
        return self.served


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class Query:
    data: dict[str, Any]  # the task's data
    region: dict[str, Any]  # the annotator's region


def _queries(task_type: TaskType, store: ObjectStore, truth: dict[str, Any]) -> list[Query]:
    """One query per true region of each item: its task data and that region."""
    queries = []
    for item in task_type.list_items(store, "batch_1").items:
        data = task_type.task_data(item, store)
        result = task_type.result_for_target(truth[item.key], task_type.input_ref(data))
        # The annotator's region: a control's own (a span, a box, a segment), not a
        # per-region transcript.
        queries += [
            Query(data, region | {"id": f"r{n}", "origin": "manual"})
            for n, region in enumerate(result)
            if region["from_name"] == task_type.from_name
        ]
    return queries


def _body(task_type: TaskType, labels: tuple[str, ...], query: Query) -> dict[str, Any]:
    """The body Label Studio 1.23 sends for a region marked in interactive mode."""
    return {
        "tasks": [{"id": 1, "data": query.data}],
        "project": "1.1717171717",
        "label_config": task_type.label_config(labels),
        "params": {"login": None, "password": None, "context": {"result": [query.region]}},
    }


def _serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, int]:
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    return server, thread, port


def measure(task: str, count: int) -> str:
    """One line: the median and p95 latency of `count` interactive requests for `task`."""
    task_type = get_task_type(task)
    labels = task_type.defaults.labels
    training = load_training_parameters(task)
    config = {**training.train_config, **QUICK_TRAINING[task]}
    with tempfile.TemporaryDirectory(prefix=f"interactive-{task}-") as root:
        store = ObjectStore(DataSource(root_uri=root, dataset="demo"))
        truth = demo_data_of(task_type).seed_demo(
            store, batches=1, batch_size=TRAINING_ITEMS + count, seed=0
        )
        queries = _queries(task_type, store, truth)
        examples = demo_examples(task_type, store, truth)[:TRAINING_ITEMS]
        model, _ = task_type.train(examples, labels, config, None)
        served = ServedModel(f"{task}:1", task_type, labels, model)
        app = create_app(ModelHolder(StaticSource(served)), store, 1, CREDENTIALS)
        server, thread, port = _serve(app)
        trained_on = {example.key for example in examples}
        queries = [q for q in queries if q.data["key"] not in trained_on]
        timings_ms = []
        try:
            with httpx.Client(
                base_url=f"http://127.0.0.1:{port}", auth=CREDENTIALS_AUTH, timeout=60
            ) as client:
                for n in range(WARM_UP_REQUESTS + count):
                    body = _body(task_type, labels, queries[n % len(queries)])
                    started = time.perf_counter()
                    response = client.post("/predict", json=body)
                    elapsed = (time.perf_counter() - started) * 1000
                    response.raise_for_status()
                    if not response.json()["results"][0]:
                        raise click.ClickException(f"No interactive {task} answer for {body}")
                    if n >= WARM_UP_REQUESTS:
                        timings_ms.append(elapsed)
        finally:
            server.should_exit = True
            thread.join(timeout=30)
    p95 = statistics.quantiles(timings_ms, n=20)[-1]
    return (
        f"interactive {task} on {best_device()} ({count} requests): "
        f"median {statistics.median(timings_ms):.1f} ms, p95 {p95:.1f} ms"
    )


@click.command()
@click.argument("tasks", nargs=-1)
@click.option("--requests", "count", default=50, show_default=True, help="Timed requests.")
def main(tasks: tuple[str, ...], count: int) -> None:
    """Latency of interactive answers for TASKS (default: every task type answering regions)."""
    for task in tasks or tuple(QUICK_TRAINING):
        click.echo(measure(task, count))


if __name__ == "__main__":
    main()
