"""Stores a `DetectorCheckpoint` in any artifact store (local, S3, GCS, Azure).

Two files, as for image classifiers: `weights.pt` (the state dict, written with
`torch.save`, read back with `weights_only=True`, so loading runs no pickled code) and
`checkpoint.json` (architecture, labels, image size, and the score threshold, NMS IoU and
box limit predictions use). torch is imported when a checkpoint is read or written, not
with the module: every step imports the materializers, and most never touch a model.
"""

from __future__ import annotations

import io
import os
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.metadata.metadata_types import MetadataType

from annotation_loop.detection.checkpoint import DetectorCheckpoint
from materializers.artifact_files import files, read_fields, refuse

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
        # Remote stores hand out streams that torch.load cannot seek in: read the bytes first.
        with self.artifact_store.open(os.path.join(self.uri, WEIGHTS_FILE), "rb") as handle:
            weights = io.BytesIO(handle.read())
        return DetectorCheckpoint(**config.model_dump(), state_dict=self._state_dict(weights))

    def _state_dict(self, weights: io.BytesIO) -> dict[str, Any]:
        import torch

        try:
            # weights_only: tensors and plain containers only; a pickled object that would
            # run code on load is refused, not executed.
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:  # whatever the unpickler raises on bytes torch.save never wrote
            raise refuse(
                self.uri,
                f"{WEIGHTS_FILE} is not tensors as torch.save writes them ({type(exc).__name__})",
            ) from None
        if not isinstance(state, dict) or not all(
            isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
        ):
            raise refuse(self.uri, f"{WEIGHTS_FILE} is not a mapping of names to tensors")
        return state

    def save(self, data: DetectorCheckpoint) -> None:
        import torch

        weights = io.BytesIO()
        torch.save(data.state_dict, weights)
        with self.artifact_store.open(os.path.join(self.uri, WEIGHTS_FILE), "wb") as handle:
            handle.write(weights.getvalue())
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
