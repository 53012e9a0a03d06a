"""Scores an image classifier on labelled images."""

from __future__ import annotations

from collections.abc import Sequence

from annotation_loop.learning.classification_metrics import ClassificationMetrics, compute_metrics
from annotation_loop.vision.checkpoint import ClassifierCheckpoint
from annotation_loop.vision.classifier import LabelledImage, predict_images


def evaluate_classifier(
    checkpoint: ClassifierCheckpoint,
    examples: Sequence[LabelledImage],
    batch_size: int = 128,
    progress: bool = True,
) -> ClassificationMetrics:
    """Metrics of `checkpoint` on `examples`; images that cannot be decoded are left out."""
    truth = {example.key: example.label for example in examples}
    predictions, _ = predict_images(
        checkpoint,
        ((example.key, example.data) for example in examples),
        batch_size=batch_size,
        progress=progress,
    )
    return compute_metrics(
        [truth[p.key] for p in predictions], [p.label for p in predictions], checkpoint.labels
    )
