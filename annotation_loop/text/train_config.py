"""How a text model is fine-tuned (`train_config:` in configs/text|ner/training.yaml); apart
from the model code, so that a config is checked without importing torch or transformers."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ConfigDict, with_config

from annotation_loop.errors import ConfigurationError

MINILM = "minilm"


# A key the class does not have is an error when a config is checked, not ignored.
@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True)
class TextTrainConfig:
    base_model: str = MINILM  # "minilm" (offline) or a Hugging Face model id
    max_length: int = 128  # tokens per window; longer texts are split into windows
    stride: int = 32  # tokens shared by consecutive windows of one long text
    epochs: int = 4
    batch_size: int = 16
    learning_rate: float = 5e-5
    weight_decay: float = 0.01
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_length < 8 or not 0 <= self.stride < self.max_length // 2:
            raise ConfigurationError(
                f"Invalid text config {self}: max_length must be >= 8 and stride "
                "between 0 and max_length / 2"
            )
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ConfigurationError(
                f"Invalid text config {self}: epochs and batch_size must be >= 1, learning_rate > 0"
            )
