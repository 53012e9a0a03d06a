"""A trained detector as plain data: what the materializer stores and loads.

Nothing here imports torch: a pipeline run that only passes a checkpoint on does not pay for
it. The model is built from the weights on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from annotation_loop.detection.model import Detector, StateDict


@dataclass
class DetectorCheckpoint:
    """Everything needed to rebuild a trained detector, without any download."""

    arch: str
    labels: list[str]
    image_size: int  # the longer side images are scaled to
    score_threshold: float
    nms_iou: float
    max_boxes: int
    state_dict: StateDict = field(repr=False)

    def build_detector(self) -> Detector:
        """The detector with these weights, on the CPU, in eval mode."""
        from annotation_loop.detection.model import build_detector

        detector = build_detector(self.arch, len(self.labels), self.image_size, pretrained=False)
        detector.load_state_dict(self.state_dict)
        return detector.eval()

    @cached_property
    def predictor(self) -> Detector:
        """The detector on the best device, in eval mode: built on first use and kept with the
        checkpoint, so that repeated predictions do not rebuild it. Never train it."""
        from annotation_loop.detection.detector import load_predictor

        return load_predictor(self)
