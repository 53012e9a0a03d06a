"""The ML backend's models from the ZenML Model Control Plane: the `production` version."""

from __future__ import annotations

from dataclasses import dataclass

from zenml.client import Client

from annotation_loop.ml_backend.served_model import ServedModel
from annotation_loop.task_types import get_task_type
from annotation_loop.zenml_integration.model_registry import (
    MODEL_ARTIFACT,
    load_artifact,
    prediction_model_version,
    production_version,
)


@dataclass(frozen=True)
class ZenMLModelSource:
    model_name: str
    task: str
    labels: tuple[str, ...]

    def production_version(self) -> str | None:
        version = production_version(self.model_name)
        return None if version is None else str(version.name)

    def load(self, version: str) -> ServedModel:
        model_version = Client().get_model_version(self.model_name, version)
        return ServedModel(
            model_version=prediction_model_version(self.model_name, version),
            task_type=get_task_type(self.task),
            labels=self.labels,
            model=load_artifact(model_version, MODEL_ARTIFACT),
        )
