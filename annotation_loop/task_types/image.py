"""Image classification: one label per image, a pretrained CNN fine-tuned with torch."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from annotation_loop.data.storage import IMAGE_SUFFIXES, ObjectStore
from annotation_loop.task_types import choices
from annotation_loop.task_types.base import (
    Evaluation,
    Example,
    Prediction,
    TaskDefaults,
)
from annotation_loop.task_types.bucket_files import BucketFiles
from annotation_loop.task_types.capabilities import DemoData
from annotation_loop.vision.train_config import TrainConfig

TO_NAME = "image"

logger = logging.getLogger(__name__)


class ImageFiles(BucketFiles):
    """Images in the bucket, one task each; an image is read only within the dataset's
    pixel limit (a small PNG can declare gigapixels)."""

    media_field = TO_NAME
    suffixes = IMAGE_SUFFIXES

    def usable_bytes(self, uri: str, data: bytes, store: ObjectStore) -> bytes | None:
        from annotation_loop.vision.images import (
            ImageTooLargeError,
            check_image_size,
            limit_image_pixels,
        )

        # PIL's limit is per process: this dataset's, for every decode that follows.
        limit_image_pixels(store.source.max_image_pixels)
        try:
            check_image_size(data, uri)
        except ImageTooLargeError as error:
            logger.warning("Skipped an input: %s", error)
            return None
        return data


class ImageClassification(ImageFiles, choices.SingleChoiceTaskType, DemoData):
    to_name = TO_NAME
    name = "image"
    description = "image classification"
    item_description = "JPEG/PNG images"
    promotion_metric = "accuracy"
    train_config_type = TrainConfig
    items_in_bucket = True
    defaults = TaskDefaults(
        project_name="MNIST digits",
        model_name="digits_classifier",
        dataset="mnist",
        labels=tuple(str(digit) for digit in range(10)),
    )

    def label_config(self, labels: Sequence[str]) -> str:
        return choices.choices_config(
            f'<Image name="{TO_NAME}" value="$image" zoom="true"/>', TO_NAME, labels
        )

    def train(
        self,
        examples: Sequence[Example],
        labels: Sequence[str],
        config: Mapping[str, Any],
        init: Any | None,
    ) -> tuple[Any, dict[str, Any]]:
        from annotation_loop.vision.classifier import LabelledImage, train_classifier

        images = [LabelledImage(e.key, e.input, e.target) for e in examples]
        checkpoint, report = train_classifier(
            images, labels, self.train_config_type(**config), init=init
        )
        summary = asdict(report)
        summary["skipped_keys"] = report.skipped_keys[:20]
        summary["items_per_second"] = summary.pop("images_per_second")
        return checkpoint, summary

    def predict(
        self, model: Any, inputs: Iterable[tuple[str, Any]], batch_size: int
    ) -> tuple[list[Prediction], list[str]]:
        from annotation_loop.vision.classifier import predict_images

        predictions, corrupt = predict_images(model, inputs, batch_size=batch_size)
        return [
            Prediction(p.key, p.label, p.score, p.uncertainty, p.embedding) for p in predictions
        ], corrupt

    def evaluate(self, model: Any, examples: Sequence[Example]) -> Evaluation:
        from annotation_loop.vision.classifier import LabelledImage
        from annotation_loop.vision.metrics import evaluate_classifier

        metrics = evaluate_classifier(
            model, [LabelledImage(e.key, e.input, e.target) for e in examples]
        )
        return choices.classification_evaluation(metrics)

    def seed_demo(
        self, store: ObjectStore, batches: int, batch_size: int, seed: int
    ) -> dict[str, Any]:
        from annotation_loop.vision.mnist import seed_mnist_batches

        return seed_mnist_batches(store, batches, batch_size, seed)
