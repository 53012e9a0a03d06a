"""How a speech recogniser is trained (`train_config:` in configs/transcription/training.yaml);
apart from the model code, so that a config is checked without importing torch."""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import ConfigDict, with_config

from annotation_loop.errors import ConfigurationError

# The recogniser shipped inside the pocketsphinx wheel: nothing is trained, it is the
# baseline a version is registered for, so that pre-annotations work offline from round two.
POCKETSPHINX = "pocketsphinx"
# A tiny randomly initialised wav2vec2 CTC model with a character vocabulary: the same
# training code as a hub model, in seconds and offline (tests, smoke runs).
RANDOM_TINY = "random-tiny"


# A key the class does not have is an error when a config is checked, not ignored.
@with_config(ConfigDict(extra="forbid"))
@dataclass(frozen=True)
class TranscriptionTrainConfig:
    # "pocketsphinx", "random-tiny", a Hugging Face CTC model id (facebook/wav2vec2-base-960h)
    # or a local folder holding one.
    base_model: str = POCKETSPHINX
    epochs: int = 10
    batch_size: int = 8  # speech segments per step
    learning_rate: float = 1e-4
    max_segment_s: float = 20.0  # longer annotated segments are left out of training (memory)
    # The convolutional feature encoder of a pretrained wav2vec2 stays as it is: few labels.
    freeze_feature_encoder: bool = True
    seed: int = 0

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.learning_rate <= 0:
            raise ConfigurationError(
                f"Invalid transcription config {self}: epochs and batch_size must be >= 1, "
                "learning_rate > 0"
            )
        if self.max_segment_s <= 0 or not self.base_model:
            raise ConfigurationError(
                f"Invalid transcription config {self}: max_segment_s must be > 0 and base_model set"
            )
