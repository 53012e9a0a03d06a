"""Image classification: one label per image, a pretrained CNN fine-tuned with torch."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict
from typing import Any

from annotation_loop.data.confined_reads import UnreadableObject
from annotation_loop.data.storage import IMAGE_SUFFIXES, ObjectStore
from annotation_loop.task_types import choices
from annotation_loop.task_types.base import (
    Evaluation,
    Example,
    ItemListing,
    Prediction,
    SourceItem,
    TaskDefaults,
)
from annotation_loop.task_types.capabilities import DemoData
from annotation_loop.vision.train_config import TrainConfig

TO_NAME = "image"

logger = logging.getLogger(__name__)


def _decodable(uri: str, data: bytes | UnreadableObject) -> bytes | None:
    """The bytes of an image that may be decoded; None, with the reason logged, otherwise."""
    from annotation_loop.vision.images import ImageTooLargeError, check_image_size

    if isinstance(data, UnreadableObject):
        logger.warning("Skipped an input: %s", data)
        return None
    try:
        check_image_size(data, uri)
    except ImageTooLargeError as error:
        logger.warning("Skipped an input: %s", error)
        return None
    return data


class ImageClassification(choices.SingleChoiceTaskType, DemoData):
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

    def task_data(self, item: SourceItem, store: ObjectStore) -> dict[str, Any]:
        return {
            "image": store.label_studio_uri(item.uri),
            "uri": item.uri,
            "key": item.key,
            "batch": item.batch,
            "content_hash": item.content_hash,
        }

    def input_ref(self, data: Mapping[str, Any]) -> str:
        return str(data["uri"])  # the bytes stay in the bucket

    def iter_items(self, store: ObjectStore, batch: str) -> Iterator[ItemListing]:
        for page in store.iter_batch(batch, IMAGE_SUFFIXES):
            yield ItemListing(
                batch=batch,
                items=[
                    SourceItem(key=o.key, uri=o.uri, batch=batch, content_hash=o.content_hash)
                    for o in page.objects
                ],
                skipped=page.skipped,
                problems=page.problems,
            )

    def load_inputs(
        self, store: ObjectStore, refs: Iterable[tuple[str, str]]
    ) -> Iterator[tuple[str, bytes | None]]:
        """The images' bytes; None, with the reason logged, for one that is refused, gone,
        unreadable or has too many pixels to decode."""
        from annotation_loop.vision.images import limit_image_pixels

        # PIL's limit is per process: this dataset's, for every decode that follows.
        limit_image_pixels(store.source.max_image_pixels)
        keys_by_uri: dict[str, list[str]] = {}
        for key, uri in refs:
            keys_by_uri.setdefault(uri, []).append(key)
        for uri, data in store.read_many(keys_by_uri):
            usable = _decodable(uri, data)
            for key in keys_by_uri[uri]:
                yield key, usable

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
