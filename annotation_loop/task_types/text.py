"""Text classification: one label per text, a transformers encoder fine-tuned end to end."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from annotation_loop.data.storage import ObjectStore
from annotation_loop.task_types import choices
from annotation_loop.task_types.base import (
    Evaluation,
    Example,
    Prediction,
    TaskDefaults,
)
from annotation_loop.task_types.capabilities import DemoData
from annotation_loop.task_types.text_source import TO_NAME, TextTaskType
from annotation_loop.text.datasets import REVIEW_LABELS


class TextClassification(choices.SingleChoiceTaskType, TextTaskType, DemoData):
    to_name = TO_NAME
    name = "text"
    description = "text classification"
    promotion_metric = "accuracy"
    defaults = TaskDefaults(
        project_name="Movie reviews",
        model_name="review_classifier",
        dataset="reviews",
        labels=REVIEW_LABELS,
    )

    def label_config(self, labels: Sequence[str]) -> str:
        return choices.choices_config(f'<Text name="{TO_NAME}" value="$text"/>', TO_NAME, labels)

    def train(
        self,
        examples: Sequence[Example],
        labels: Sequence[str],
        config: Mapping[str, Any],
        init: Any | None,
    ) -> tuple[Any, dict[str, Any]]:
        from annotation_loop.text.classifier import train_text_classifier
        from annotation_loop.text.examples import TextExample

        checkpoint, report = train_text_classifier(
            [TextExample(e.key, e.input, e.target) for e in examples],
            labels,
            self.train_config_type(**config),
            init=init,
        )
        summary = asdict(report)
        summary["items_per_second"] = summary.pop("texts_per_second")
        return checkpoint, summary

    def predict(
        self, model: Any, inputs: Iterable[tuple[str, Any]], batch_size: int
    ) -> tuple[list[Prediction], list[str]]:
        from annotation_loop.text.classifier import predict_texts

        pairs = list(inputs)
        predictions = predict_texts(model, pairs, batch_size=batch_size)
        predicted = {p.key for p in predictions}
        return (
            [Prediction(p.key, p.label, p.score, p.uncertainty, p.embedding) for p in predictions],
            [key for key, _ in pairs if key not in predicted],  # empty texts
        )

    def evaluate(self, model: Any, examples: Sequence[Example]) -> Evaluation:
        from annotation_loop.text.classifier import evaluate_text_classifier
        from annotation_loop.text.examples import TextExample

        metrics = evaluate_text_classifier(
            model, [TextExample(e.key, e.input, e.target) for e in examples]
        )
        return choices.classification_evaluation(metrics)

    def seed_demo(
        self, store: ObjectStore, batches: int, batch_size: int, seed: int
    ) -> dict[str, Any]:
        from annotation_loop.text.datasets import seed_review_batches

        return seed_review_batches(store, batches, batch_size, seed)
