"""A trained speech recogniser as plain data: what the materializer stores and loads.

Nothing here imports torch or transformers, so that passing a checkpoint on costs nothing;
a CTC model is loaded from its files on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from annotation_loop.audio.ctc import CtcInference

Recogniser = Literal["pocketsphinx", "ctc"]


@dataclass
class TranscriptionCheckpoint:
    """The recogniser a model version transcribes with: pocketsphinx (no files: its model
    ships in its wheel) or a CTC model with its processor, as `save_pretrained` writes them."""

    recogniser: Recogniser
    base_model: str  # the train_config.base_model it came from
    speech_label: str  # the label of the regions it transcribes and predicts
    files: dict[str, bytes] = field(default_factory=dict, repr=False)  # file name -> content

    @cached_property
    def ctc(self) -> CtcInference:
        """The CTC model on the best device, loaded on first use and kept with the
        checkpoint so that repeated predictions do not rebuild it."""
        from annotation_loop.audio.ctc import load_for_inference

        return load_for_inference(self)
