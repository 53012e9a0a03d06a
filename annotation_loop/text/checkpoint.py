"""A fine-tuned text model as plain data: what the materializer stores and loads.

Nothing here imports torch or transformers: a pipeline run that only passes a checkpoint
on, or finds nothing to predict, does not pay the seconds those imports take. The model is
loaded from the files on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from annotation_loop.text.pretrained import InferenceModel

Head = Literal["sequence_classification", "token_classification"]


@dataclass
class TextCheckpoint:
    """A fine-tuned model with its tokenizer, as the files `save_pretrained` writes.

    Self-contained: loading it needs neither the hub nor the base model's package.
    """

    head: Head
    base_model: str
    labels: list[str]  # what the model outputs: classes, or BIO tags for token classification
    max_length: int
    stride: int
    files: dict[str, bytes] = field(repr=False)  # relative path -> content

    @cached_property
    def inference(self) -> InferenceModel:
        """The model on the best device, with its tokenizer: loaded on first use and kept with
        the checkpoint, so that repeated predictions do not rebuild it. Never train it;
        `load_checkpoint` gives a model to train."""
        from annotation_loop.text.pretrained import load_for_inference

        return load_for_inference(self)
