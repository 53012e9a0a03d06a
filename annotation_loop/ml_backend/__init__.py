"""The Label Studio ML backend: pre-annotations from the production model, on request."""

from annotation_loop.ml_backend.app import create_app
from annotation_loop.ml_backend.label_config import check_label_config
from annotation_loop.ml_backend.served_model import ModelHolder, ModelSource, ServedModel

__all__ = ["ModelHolder", "ModelSource", "ServedModel", "check_label_config", "create_app"]
