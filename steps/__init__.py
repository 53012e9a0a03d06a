"""Thin ZenML steps over `annotation_loop`: each one reads its inputs, calls library code,
and logs what happened as metadata."""

from steps.annotations import fetch_annotations
from steps.evaluate import evaluate_and_promote
from steps.inference import predict_batch, push_predictions
from steps.label_review import review_labels
from steps.learning_curve import record_learning_curve
from steps.sync import sync_batch
from steps.train import train_model

__all__ = [
    "evaluate_and_promote",
    "fetch_annotations",
    "predict_batch",
    "push_predictions",
    "record_learning_curve",
    "review_labels",
    "sync_batch",
    "train_model",
]
