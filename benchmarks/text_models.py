"""Training and inference throughput of the text task types' models, on the demo datasets
(Rotten Tomatoes reviews, WNUT-16 tweets), with the pipelines' own configs."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

import torch
import yaml

from annotation_loop.text.classifier import predict_texts, train_text_classifier
from annotation_loop.text.datasets import REVIEW_LABELS, rotten_tomatoes, wnut16
from annotation_loop.text.pretrained import TextTrainConfig, load_checkpoint
from annotation_loop.text.tagger import predict_spans, train_tagger
from benchmarks.figures import Row, median_rate, timed

CONFIGS = Path(__file__).parent.parent / "configs"
PER_ITEM_TEXTS = 100


def _params(task: str, name: str) -> dict[str, Any]:
    parameters: dict[str, Any] = yaml.safe_load((CONFIGS / task / name).read_text())["parameters"]
    return parameters


def _per_item_loop(model: Any, tokenizer: Any, texts: list[str], max_length: int) -> None:
    """The classic example: the model loaded once, then one text per forward pass."""
    with torch.inference_mode():
        for text in texts:
            inputs = tokenizer(text, truncation=True, max_length=max_length)
            model(**{k: torch.tensor([v]) for k, v in inputs.items()}).logits.softmax(-1)


def text_model_rows(repeats: int, quick: bool) -> list[Row]:
    n_train, n_predict = (200, 200) if quick else (400, 1000)
    rows: list[Row] = []
    reviews = rotten_tomatoes()
    tweets, entity_types = wnut16()
    for task, train, predict, data in (
        (
            "text",
            lambda config: train_text_classifier(
                reviews[:n_train], REVIEW_LABELS, config, progress=False
            ),
            predict_texts,
            [(r.key, r.text) for r in reviews[-n_predict:]],
        ),
        (
            "ner",
            lambda config: train_tagger(tweets[:n_train], entity_types, config, progress=False),
            predict_spans,
            [(t.key, t.text) for t in tweets[-n_predict:]],
        ),
    ):
        config = TextTrainConfig(**{**_params(task, "training.yaml")["train_config"], "epochs": 1})
        batch_size = _params(task, "inference.yaml")["batch_size"]
        reports = [train(config)[1] for _ in range(repeats)]
        checkpoint, _ = train(config)
        infer_runs = [
            timed(predict, checkpoint, data, batch_size=batch_size, progress=False)
            for _ in range(repeats)
        ]
        per_item = [text for _, text in data[:PER_ITEM_TEXTS]]
        model, tokenizer = load_checkpoint(checkpoint)
        rows.append(
            Row(
                f"{task}: training (MiniLM, full fine-tune)",
                statistics.median(r.texts_per_second for r in reports),
                "texts/s",
            )
        )
        rows.append(
            Row(
                f"{task}: inference (batched)",
                median_rate(len(data), infer_runs),
                "texts/s",
                len(per_item)
                / timed(_per_item_loop, model, tokenizer, per_item, checkpoint.max_length),
                "per-item loop",
            )
        )
    return rows
