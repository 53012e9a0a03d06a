"""Thin ZenML steps over `annotation_loop`, grouped by the pipeline stage they belong to:
each one reads its inputs, calls library code, and logs what happened as metadata."""

from steps.inference.predictions import predict_batch, push_predictions
from steps.inference.sync import choose_next_batch, sync_batch
from steps.training.annotations import fetch_annotations
from steps.training.evaluate import evaluate_model
from steps.training.label_quality import record_label_quality
from steps.training.label_review import review_labels
from steps.training.learning_curve import record_learning_curve
from steps.training.promote import promote_model
from steps.training.train import train_model

__all__ = [
    "choose_next_batch",
    "evaluate_model",
    "fetch_annotations",
    "predict_batch",
    "promote_model",
    "push_predictions",
    "record_label_quality",
    "record_learning_curve",
    "review_labels",
    "sync_batch",
    "train_model",
]
