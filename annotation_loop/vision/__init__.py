"""Image classification: fine-tune a pretrained backbone, predict, evaluate.

Plain PyTorch, no ZenML: the pipeline steps call into here.
"""

from annotation_loop.vision.backbones import (
    KNOWN_ARCHS,
    WeightsUnavailableError,
    build_classifier,
)
from annotation_loop.vision.classifier import (
    ClassifierCheckpoint,
    EmptyTrainingSetError,
    ImagePrediction,
    LabelledImage,
    TrainConfig,
    TrainingReport,
    predict_images,
    train_classifier,
)
from annotation_loop.vision.images import CorruptImageError, decode_image
from annotation_loop.vision.metrics import evaluate_classifier

__all__ = [
    "KNOWN_ARCHS",
    "ClassifierCheckpoint",
    "CorruptImageError",
    "EmptyTrainingSetError",
    "ImagePrediction",
    "LabelledImage",
    "TrainConfig",
    "TrainingReport",
    "WeightsUnavailableError",
    "build_classifier",
    "decode_image",
    "evaluate_classifier",
    "predict_images",
    "train_classifier",
]
