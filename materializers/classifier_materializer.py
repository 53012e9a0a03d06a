"""Stores a `ClassifierCheckpoint` in any artifact store (local, S3, GCS, Azure).

Two files: `weights.pt` (the state dict, written with `torch.save`, read back with
`weights_only=True`, so loading runs no pickled code) and `checkpoint.json` (arch, labels,
image size). torch is imported when a checkpoint is read or written, not with the module:
every step imports the materializers, and most never touch a model.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.metadata.metadata_types import MetadataType

from annotation_loop.vision.checkpoint import ClassifierCheckpoint
from materializers.artifact_files import files, read_fields
from materializers.torch_weights import read_state_dict, write_state_dict

WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "checkpoint.json"
FOLDER = files("an image checkpoint", [WEIGHTS_FILE, CONFIG_FILE])


class _Config(BaseModel):
    """`checkpoint.json`: what rebuilds the model around the weights."""

    model_config = ConfigDict(extra="forbid", strict=True)

    arch: str
    labels: list[str]
    image_size: int


class ClassifierCheckpointMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (ClassifierCheckpoint,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def load(self, data_type: type[Any]) -> ClassifierCheckpoint:
        FOLDER.check_folder(self.artifact_store, self.uri)
        config = read_fields(self.artifact_store, self.uri, CONFIG_FILE, _Config)
        state_dict = read_state_dict(self.artifact_store, self.uri, WEIGHTS_FILE)
        return ClassifierCheckpoint(
            arch=config.arch,
            labels=config.labels,
            image_size=config.image_size,
            state_dict=state_dict,
        )

    def save(self, data: ClassifierCheckpoint) -> None:
        write_state_dict(self.artifact_store, self.uri, WEIGHTS_FILE, data.state_dict)
        config = _Config(arch=data.arch, labels=data.labels, image_size=data.image_size)
        with self.artifact_store.open(os.path.join(self.uri, CONFIG_FILE), "wb") as handle:
            handle.write(config.model_dump_json().encode())

    def extract_metadata(self, data: ClassifierCheckpoint) -> dict[str, MetadataType]:
        num_parameters = sum(p.numel() for p in data.build_module().parameters())
        return {
            "arch": data.arch,
            "labels": data.labels,
            "image_size": data.image_size,
            "num_parameters": num_parameters,
        }
