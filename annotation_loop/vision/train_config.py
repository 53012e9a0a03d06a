"""How an image classifier is fine-tuned (`train_config:` in configs/image/training.yaml);
apart from the model code, so that a config is checked without importing torch."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ConfigDict, with_config

from annotation_loop.errors import ConfigurationError


# A key the class does not have is an error when a config is checked, not ignored.
@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True)
class TrainConfig:
    arch: str = "efficientnet_lite0"
    image_size: int = 224
    epochs: int = 3
    batch_size: int = 64
    learning_rate: float = 1e-3
    freeze_backbone: bool = True  # train only the new head: fast, and enough for few labels
    num_workers: int = 0  # DataLoader processes decoding images
    seed: int = 0

    def __post_init__(self) -> None:
        if self.image_size < 32 or self.epochs < 1 or self.batch_size < 1:
            raise ConfigurationError(
                f"Invalid training config {self}: image_size must be >= 32, "
                "epochs and batch_size >= 1"
            )
        if self.learning_rate <= 0 or self.num_workers < 0:
            raise ConfigurationError(
                f"Invalid training config {self}: learning_rate must be > 0, num_workers >= 0"
            )
