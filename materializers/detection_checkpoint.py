"""Stores a `DetectorCheckpoint` in any artifact store (local, S3, GCS, Azure).

Two files, as for image classifiers: `weights.pt` (the state dict, written with
`torch.save`, read back with `weights_only=True`, so loading runs no pickled code) and
`checkpoint.json` (architecture, labels, image size, and the score threshold, NMS IoU and
box limit predictions use). torch is imported when a checkpoint is read or written, not
with the module: every step imports the materializers, and most never touch a model.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.metadata.metadata_types import MetadataType

from annotation_loop.detection.checkpoint import DetectorCheckpoint
from materializers.artifact_files import files, read_fields
from materializers.torch_weights import read_state_dict, write_state_dict

WEIGHTS_FILE = "weights.pt"
CONFIG_FILE = "checkpoint.json"
FOLDER = files("a detector checkpoint", [WEIGHTS_FILE, CONFIG_FILE])


class _Config(BaseModel):
    """`checkpoint.json`: what rebuilds the detector around the weights."""

    model_config = ConfigDict(extra="forbid", strict=True)

    arch: str
    labels: list[str]
    image_size: int
    score_threshold: float
    nms_iou: float
    max_boxes: int


class DetectorCheckpointMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (DetectorCheckpoint,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def load(self, data_type: type[Any]) -> DetectorCheckpoint:
        FOLDER.check_folder(self.artifact_store, self.uri)
        config = read_fields(self.artifact_store, self.uri, CONFIG_FILE, _Config)
        state_dict = read_state_dict(self.artifact_store, self.uri, WEIGHTS_FILE)
        return DetectorCheckpoint(**config.model_dump(), state_dict=state_dict)

    def save(self, data: DetectorCheckpoint) -> None:
        write_state_dict(self.artifact_store, self.uri, WEIGHTS_FILE, data.state_dict)
        config = _Config(
            arch=data.arch,
            labels=data.labels,
            image_size=data.image_size,
            score_threshold=data.score_threshold,
            nms_iou=data.nms_iou,
            max_boxes=data.max_boxes,
        )
        with self.artifact_store.open(os.path.join(self.uri, CONFIG_FILE), "wb") as handle:
            handle.write(config.model_dump_json().encode())

    def extract_metadata(self, data: DetectorCheckpoint) -> dict[str, MetadataType]:
        return {
            "arch": data.arch,
            "labels": data.labels,
            "image_size": data.image_size,
            "score_threshold": data.score_threshold,
            "nms_iou": data.nms_iou,
            "state_values": sum(t.numel() for t in data.state_dict.values()),  # incl. buffers
        }
