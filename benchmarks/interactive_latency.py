"""How long an annotator waits for an interactive NER answer: `/predict` with a selected span
in `params.context`, over HTTP to the ML backend app under uvicorn on 127.0.0.1 with basic
auth, as Label Studio sends it (Label Studio's own hop is not counted).

The tagger is MiniLM with the production window (configs/ner: 128 tokens), fine-tuned one
epoch on shipped WNUT-16 tweets: latency does not depend on how well it is trained. Each
request is one tweet with one of its entity spans selected.

    python -m benchmarks.interactive_latency [--requests 100]
"""

from __future__ import annotations

import socket
import statistics
import threading
import time
from typing import Any

import click
import httpx
import uvicorn
from pydantic import SecretStr

from annotation_loop.learning.accelerator import best_device
from annotation_loop.ml_backend import ModelHolder, ServedModel, create_app
from annotation_loop.ml_backend.auth import BackendCredentials
from annotation_loop.task_types import Example, get_task_type
from annotation_loop.text.datasets import wnut16

NER = get_task_type("ner")
TRAIN_CONFIG = {"max_length": 128, "stride": 32, "epochs": 1, "batch_size": 16}
TRAINING_TWEETS = 32
WARM_UP_REQUESTS = 5
CREDENTIALS = BackendCredentials("label-studio", SecretStr("benchmark"), SecretStr("hook"))


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


def _request(text: str, start: int, end: int, labels: tuple[str, ...]) -> dict[str, Any]:
    """The body Label Studio 1.23 sends for a span selected in interactive mode."""
    region = {
        "id": "selected",
        "from_name": NER.from_name,
        "to_name": "text",
        "type": "labels",
        "origin": "manual",
        "value": {"start": start, "end": end, "text": text[start:end], "labels": [labels[0]]},
    }
    return {
        "tasks": [{"id": 1, "data": {"text": text}}],
        "project": "1.1717171717",
        "label_config": NER.label_config(labels),
        "params": {"login": None, "password": None, "context": {"result": [region]}},
    }


@click.command()
@click.option("--requests", "count", default=100, show_default=True, help="Timed requests.")
def main(count: int) -> None:
    tweets, types = wnut16()
    labels = tuple(types)
    with_spans = [tweet for tweet in tweets if tweet.spans]
    examples = [Example(t.key, t.text, t.spans) for t in with_spans[:TRAINING_TWEETS]]
    click.echo(f"Fine-tuning the tagger one epoch on {len(examples)} tweets...")
    model, _ = NER.train(examples, labels, TRAIN_CONFIG, init=None)
    served = ServedModel("tweet_tagger:1", NER, labels, model)
    app = create_app(ModelHolder(StaticSource(served)), None, 1, CREDENTIALS)
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    queries = [
        _request(t.text, span.start, span.end, labels)
        for t in with_spans[TRAINING_TWEETS:]
        for span in t.spans
    ]
    timings_ms = []
    try:
        with httpx.Client(
            base_url=f"http://127.0.0.1:{port}", auth=("label-studio", "benchmark"), timeout=60
        ) as client:
            for n in range(WARM_UP_REQUESTS + count):
                body = queries[n % len(queries)]
                started = time.perf_counter()
                response = client.post("/predict", json=body)
                elapsed = (time.perf_counter() - started) * 1000
                response.raise_for_status()
                if not response.json()["results"][0]:
                    raise click.ClickException(f"No interactive answer for {body}")
                if n >= WARM_UP_REQUESTS:
                    timings_ms.append(elapsed)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
    lengths = [len(q["tasks"][0]["data"]["text"]) for q in queries[:count]]
    p95 = statistics.quantiles(timings_ms, n=20)[-1]
    click.echo(
        f"Interactive NER over HTTP on {best_device()} ({count} requests, tweets of "
        f"{statistics.median(lengths):.0f} characters median): median "
        f"{statistics.median(timings_ms):.1f} ms, p95 {p95:.1f} ms"
    )


if __name__ == "__main__":
    main()
