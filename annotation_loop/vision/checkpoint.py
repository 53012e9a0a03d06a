"""A trained image classifier as plain data: what the materializer stores and loads.

Nothing here imports torch or torchvision: a pipeline run that only passes a checkpoint on,
or finds nothing to predict, does not pay the seconds those imports take. The model is
built from the weights on first use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch import nn

    from annotation_loop.vision.backbones import SplitClassifier, StateDict


@dataclass
class ClassifierCheckpoint:
    """Everything needed to rebuild a trained classifier, without any download."""

    arch: str
    labels: list[str]
    image_size: int
    state_dict: StateDict = field(repr=False)

    def build_module(self) -> nn.Module:
        """The classifier with these weights, on the CPU, in eval mode."""
        from annotation_loop.vision.backbones import build_classifier

        model = build_classifier(self.arch, len(self.labels), self.image_size, pretrained=False)
        model.load_state_dict(self.state_dict)
        return model.eval()

    @cached_property
    def predictor(self) -> SplitClassifier:
        """The classifier on the best device, in eval mode, cut at its head: built on first use
        and kept with the checkpoint, so that repeated predictions do not rebuild it. Never
        train it; `build_module` gives a model to train."""
        from annotation_loop.vision.classifier import load_predictor

        return load_predictor(self)
