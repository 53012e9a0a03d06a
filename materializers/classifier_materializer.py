"""Stores a `ClassifierCheckpoint` in any artifact store (local, S3, GCS, Azure).

Two files: `weights.pt` (the state dict, written with `torch.save`, read back with
`weights_only=True`, so loading runs no pickled code) and `checkpoint.json` (arch, labels,
image size). torch is imported when a checkpoint is read or written, not with the module:
every step imports the materializers, and most never touch a model.
"""

from __future__ import annotations

import io
import json
import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.metadata.metadata_types import MetadataType

from annotation_loop.vision.checkpoint import ClassifierCheckpoint

WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "checkpoint.json"


class ClassifierCheckpointMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (ClassifierCheckpoint,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def load(self, data_type: type[Any]) -> ClassifierCheckpoint:
        import torch

        with self.artifact_store.open(os.path.join(self.uri, CONFIG_FILE), "rb") as handle:
            config = json.loads(handle.read())
        # Remote stores hand out streams that torch.load cannot seek in: read the bytes first.
        with self.artifact_store.open(os.path.join(self.uri, WEIGHTS_FILE), "rb") as handle:
            weights = io.BytesIO(handle.read())
        return ClassifierCheckpoint(
            arch=config["arch"],
            labels=config["labels"],
            image_size=config["image_size"],
            state_dict=torch.load(weights, map_location="cpu", weights_only=True),
        )

    def save(self, data: ClassifierCheckpoint) -> None:
        import torch

        weights = io.BytesIO()
        torch.save(data.state_dict, weights)
        with self.artifact_store.open(os.path.join(self.uri, WEIGHTS_FILE), "wb") as handle:
            handle.write(weights.getvalue())
        config = {"arch": data.arch, "labels": data.labels, "image_size": data.image_size}
        with self.artifact_store.open(os.path.join(self.uri, CONFIG_FILE), "wb") as handle:
            handle.write(json.dumps(config).encode())

    def extract_metadata(self, data: ClassifierCheckpoint) -> dict[str, MetadataType]:
        num_parameters = sum(p.numel() for p in data.build_module().parameters())
        return {
            "arch": data.arch,
            "labels": data.labels,
            "image_size": data.image_size,
            "num_parameters": num_parameters,
        }
