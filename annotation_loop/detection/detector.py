"""Train a detector on annotated images and predict boxes for new ones.

Images go to the detector at their own size: its transform scales each so that its longer
side is `image_size`, pads a batch to a common size, and maps the boxes it predicts back to
the original image's pixels. A corrupt image is skipped and its key reported.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import Any

import numpy as np
import torch
from torchvision.ops import MultiScaleRoIAlign, batched_nms
from torchvision.transforms.v2.functional import pil_to_tensor, to_dtype
from tqdm import tqdm

from annotation_loop.detection.boxes import Box, ImageBoxes
from annotation_loop.detection.checkpoint import DetectorCheckpoint
from annotation_loop.detection.model import (
    Detector,
    EfficientNetLiteFeatures,
    build_detector,
    label_offset,
    parts,
    set_postprocess,
)
from annotation_loop.detection.train_config import DetectionTrainConfig
from annotation_loop.errors import ConfigurationError, UnknownLabelError
from annotation_loop.learning.accelerator import autocast, best_device, describe
from annotation_loop.vision.classifier import EmptyTrainingSetError
from annotation_loop.vision.images import CorruptImageError, decode_image

# Candidates the detector keeps before the score threshold: the boxes just below it are
# what makes an image uncertain (a digit the model nearly found).
CANDIDATE_SCORE = 0.05
# Narrower or lower boxes are not predicted: nobody labels them, and Label Studio would
# hold a box with no area.
MIN_BOX_PIXELS = 1.0
# Region features for label review: a 2x2 grid of the pyramid's channels over each box.
REGION_GRID = 2


@dataclass(frozen=True)
class AnnotatedImage:
    key: str
    data: bytes
    target: ImageBoxes


@dataclass(frozen=True)
class BoxPrediction:
    key: str
    target: ImageBoxes  # the boxes kept (score >= threshold, after NMS), with their scores
    # The least certain kept box's score; with no box kept, 1 - the best candidate's score
    # (how sure the model is that there is nothing to find).
    score: float
    uncertainty: float  # see `image_uncertainty`
    # The pooled backbone (pyramid) features (1-D float16); left out of equality.
    embedding: np.ndarray = field(compare=False, repr=False)
    # Every candidate down to CANDIDATE_SCORE, for average precision over all scores.
    candidates: ImageBoxes = field(compare=False, repr=False, default=ImageBoxes(None))


@dataclass(frozen=True)
class DetectionTrainingReport:
    device: str
    epochs: int
    examples: int  # images trained on, corrupt ones excluded
    boxes: int
    images_per_second: float
    final_loss: float  # mean loss over the last epoch
    skipped_keys: list[str]  # images that could not be decoded


def image_tensor(data: bytes, key: str) -> torch.Tensor:
    """(3, H, W) float in [0, 1]: the detector's transform normalises and resizes it."""
    return to_dtype(pil_to_tensor(decode_image(data, key)), torch.float32, scale=True)


def image_uncertainty(candidate_scores: Sequence[float], threshold: float) -> float:
    """How unsure the model is about an image, in [0, 1]: the least certain candidate box's
    uncertainty, a box's being 1 at the score threshold (kept or dropped on a coin flip) and
    falling linearly to 0 at a score of 0 or 1. An image with no box over the threshold is
    maximally uncertain (1): either it holds nothing, or the model misses what it holds."""
    if not any(score >= threshold for score in candidate_scores):
        return 1.0
    span = max(threshold, 1.0 - threshold)
    return max(1.0 - abs(score - threshold) / span for score in candidate_scores)


def _label_index(labels: Sequence[str]) -> dict[str, int]:
    if len(labels) < 1 or len(set(labels)) != len(labels):
        raise ConfigurationError(f"A detector needs distinct labels, got {list(labels)}")
    return {label: i for i, label in enumerate(labels)}


def _training_target(
    target: ImageBoxes, size: tuple[int, int], index: dict[str, int], offset: int, key: str
) -> dict[str, torch.Tensor]:
    """Boxes and class ids in pixels of the decoded image (rescaled if the annotation was
    drawn on the image at another size)."""
    width, height = size
    scale_x, scale_y = (
        (1.0, 1.0)
        if target.size is None
        else (
            width / target.size[0],
            height / target.size[1],
        )
    )
    rows, classes = [], []
    for box in target.boxes:
        if box.label not in index:
            raise UnknownLabelError(
                f"A box of image {key} is labelled {box.label!r}, which is not one of "
                f"{list(index)}: fix the annotation or add the label"
            )
        rows.append([box.x0 * scale_x, box.y0 * scale_y, box.x1 * scale_x, box.y1 * scale_y])
        classes.append(index[box.label] + offset)
    return {
        "boxes": torch.tensor(rows, dtype=torch.float32).reshape(-1, 4),
        "labels": torch.tensor(classes, dtype=torch.int64),
    }


def _starting_detector(
    labels: list[str], config: DetectionTrainConfig, init: DetectorCheckpoint | None
) -> Detector:
    if init is None:
        return build_detector(config.arch, len(labels), config.image_size, pretrained=True)
    if init.labels != labels:
        raise ConfigurationError(
            f"The previous detector finds {init.labels}, not {labels}: "
            "train from scratch when the label list changes"
        )
    if (init.arch, init.image_size) != (config.arch, config.image_size):
        raise ConfigurationError(
            f"The previous detector is {init.arch} at {init.image_size}px, not {config.arch} "
            f"at {config.image_size}px: train from scratch when the architecture changes"
        )
    return init.build_detector().train()


def _trainable(model: Detector, freeze_backbone: bool) -> list[torch.nn.Parameter]:
    if freeze_backbone:
        _, backbone = parts(model)
        body = getattr(backbone, "body", backbone)  # torchvision's BackboneWithFPN
        frozen = (
            backbone.backbone_parameters()
            if isinstance(backbone, EfficientNetLiteFeatures)
            else list(body.parameters())
        )
        for parameter in frozen:
            parameter.requires_grad_(False)
    return [p for p in model.parameters() if p.requires_grad]


def _decoded(
    examples: Sequence[AnnotatedImage], index: dict[str, int], offset: int
) -> tuple[list[tuple[torch.Tensor, dict[str, torch.Tensor]]], list[str]]:
    """The examples' images as tensors with their targets, and the keys of corrupt ones.
    Decoded once: the demo's and a team's first rounds are hundreds of small images."""
    decoded, skipped = [], []
    for example in examples:
        try:
            image = image_tensor(example.data, example.key)
        except CorruptImageError:
            skipped.append(example.key)
            continue
        size = (image.shape[2], image.shape[1])
        decoded.append((image, _training_target(example.target, size, index, offset, example.key)))
    return decoded, skipped


def train_detector(
    examples: Sequence[AnnotatedImage],
    labels: Sequence[str],
    config: DetectionTrainConfig,
    init: DetectorCheckpoint | None = None,
    progress: bool = True,
) -> tuple[DetectorCheckpoint, DetectionTrainingReport]:
    """Fine-tune from `init` (or the pretrained backbone) on `examples`, AdamW with a cosine
    learning-rate decay over the epochs.

    Seeds torch's global RNG with `config.seed`, so runs on the CPU are reproducible.
    """
    labels = list(labels)
    index = _label_index(labels)
    if not examples:
        raise EmptyTrainingSetError("No annotated images to train on: annotate some first")
    offset = label_offset(config.arch)
    decoded, skipped = _decoded(examples, index, offset)
    if not decoded:
        raise EmptyTrainingSetError(
            f"None of the {len(examples)} training images could be decoded "
            f"(e.g. {min(skipped)}): check the files in the bucket"
        )
    torch.manual_seed(config.seed)
    device = best_device()
    model = _starting_detector(labels, config, init).to(device)
    optimizer = torch.optim.AdamW(
        _trainable(model, config.freeze_backbone), lr=config.learning_rate
    )
    steps_per_epoch = math.ceil(len(decoded) / config.batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=config.epochs * steps_per_epoch
    )
    order = torch.Generator().manual_seed(config.seed)
    model.train()
    started = time.perf_counter()
    final_loss = float("nan")
    for epoch in range(config.epochs):
        loss_sum = torch.zeros((), device=device)
        permutation = torch.randperm(len(decoded), generator=order).tolist()
        description = f"epoch {epoch + 1}/{config.epochs}"
        for start in tqdm(
            range(0, len(decoded), config.batch_size), desc=description, disable=not progress
        ):
            batch = [decoded[i] for i in permutation[start : start + config.batch_size]]
            images = [image.to(device, non_blocking=True) for image, _ in batch]
            targets = [{k: v.to(device) for k, v in target.items()} for _, target in batch]
            with autocast(device):
                losses = model(images, targets)
            loss = sum(value.float() for value in losses.values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            # FCOS's regression loss spikes on a new head's first steps.
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            optimizer.step()
            schedule.step()
            loss_sum += loss.detach() * len(batch)
        final_loss = loss_sum.item() / len(decoded)
    elapsed = time.perf_counter() - started
    checkpoint = DetectorCheckpoint(
        arch=config.arch,
        labels=labels,
        image_size=config.image_size,
        score_threshold=config.score_threshold,
        nms_iou=config.nms_iou,
        max_boxes=config.max_boxes,
        state_dict={name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()},
    )
    report = DetectionTrainingReport(
        device=describe(device),
        epochs=config.epochs,
        examples=len(decoded),
        boxes=sum(len(target["labels"]) for _, target in decoded),
        images_per_second=len(decoded) * config.epochs / elapsed,
        final_loss=final_loss,
        skipped_keys=sorted(skipped),
    )
    return checkpoint, report


def load_predictor(checkpoint: DetectorCheckpoint) -> Detector:
    """`checkpoint`'s detector on the best device, in eval mode, keeping candidates down to
    CANDIDATE_SCORE (the threshold is applied after, see `_kept`)."""
    model = checkpoint.build_detector()
    set_postprocess(model, CANDIDATE_SCORE, checkpoint.nms_iou, checkpoint.max_boxes)
    return model.to(best_device()).eval()


@dataclass(frozen=True)
class _Detections:
    boxes: torch.Tensor  # (n, 4) in pixels of the original image
    scores: torch.Tensor  # (n,)
    classes: torch.Tensor  # (n,) label indexes
    embedding: np.ndarray


def _detect(checkpoint: DetectorCheckpoint, images: list[torch.Tensor]) -> list[_Detections]:
    """Candidate boxes of each image after the detector's per-class NMS, with the image's
    pooled pyramid features (caught on their way from the backbone to the heads)."""
    model = checkpoint.predictor
    device = next(model.parameters()).device
    pooled: list[torch.Tensor] = []

    def keep_features(_: Any, __: Any, features: dict[str, torch.Tensor]) -> None:
        pooled.append(torch.stack([f.float().mean(dim=(2, 3)) for f in features.values()]).mean(0))

    hook = parts(model)[1].register_forward_hook(keep_features)
    try:
        with torch.inference_mode(), autocast(device):
            outputs = model([image.to(device) for image in images])
    finally:
        hook.remove()
    offset = label_offset(checkpoint.arch)
    embeddings = pooled[0].to(torch.float16).cpu().numpy()
    return [
        _Detections(
            out["boxes"].float().cpu(),
            out["scores"].float().cpu(),
            out["labels"].cpu() - offset,
            embedding,
        )
        for out, embedding in zip(outputs, embeddings, strict=True)
    ]


def _kept(detections: _Detections, threshold: float, nms_iou: float) -> torch.Tensor:
    """Indexes of the boxes predicted: over the threshold, and after NMS across classes, so
    that one object is not pre-annotated twice under two labels."""
    over = torch.nonzero(detections.scores >= threshold).flatten()
    keep = batched_nms(
        detections.boxes[over],
        detections.scores[over],
        torch.zeros(len(over), dtype=torch.int64),
        nms_iou,
    )
    return over[keep]


def _box(label: str, corners: Sequence[float], score: float) -> Box:
    """A predicted box, its corners rounded to 1/100 px (finer is noise, and JSON bulk)."""
    x0, y0, x1, y1 = (round(float(v), 2) for v in corners)
    return Box(label, x0, y0, x1, y1, score=float(score))


def _prediction(
    key: str, size: tuple[int, int], detections: _Detections, checkpoint: DetectorCheckpoint
) -> BoxPrediction:
    sizes = detections.boxes[:, 2:] - detections.boxes[:, :2]
    visible = (sizes >= MIN_BOX_PIXELS).all(dim=1)
    detections = replace(
        detections,
        boxes=detections.boxes[visible],
        scores=detections.scores[visible],
        classes=detections.classes[visible],
    )
    kept = _kept(detections, checkpoint.score_threshold, checkpoint.nms_iou)
    boxes = tuple(
        _box(checkpoint.labels[int(detections.classes[i])], detections.boxes[i].tolist(), score)
        for i, score in zip(kept.tolist(), detections.scores[kept].tolist(), strict=True)
    )
    candidates = detections.scores.tolist()
    every_candidate = tuple(
        _box(checkpoint.labels[int(c)], box, s)
        for box, s, c in zip(
            detections.boxes.tolist(), candidates, detections.classes.tolist(), strict=True
        )
    )
    if boxes:
        score = min(box.score for box in boxes if box.score is not None)
    else:
        score = 1.0 - max(candidates, default=0.0)
    return BoxPrediction(
        key,
        ImageBoxes(size, boxes),
        score,
        image_uncertainty(candidates, checkpoint.score_threshold),
        detections.embedding,
        ImageBoxes(size, every_candidate),
    )


def _decoded_batches(
    images: Iterable[tuple[str, bytes]], batch_size: int
) -> Iterator[tuple[list[tuple[str, torch.Tensor]], list[str]]]:
    """Batches of (key, decoded image), and the keys of the batch's corrupt images."""
    source = iter(images)
    while chunk := list(islice(source, batch_size)):
        good, corrupt = [], []
        for key, data in chunk:
            try:
                good.append((key, image_tensor(data, key)))
            except CorruptImageError:
                corrupt.append(key)
        yield good, corrupt


def predict_boxes(
    checkpoint: DetectorCheckpoint,
    images: Iterable[tuple[str, bytes]],
    batch_size: int = 16,
    progress: bool = True,
) -> tuple[list[BoxPrediction], list[str]]:
    """Boxes, scores, uncertainty and embedding of each `(key, bytes)`, and the keys of
    corrupt images."""
    predictions: list[BoxPrediction] = []
    skipped: list[str] = []
    with tqdm(desc="detect", unit="images", disable=not progress) as bar:
        for good, corrupt in _decoded_batches(images, batch_size):
            skipped += corrupt
            bar.update(len(good) + len(corrupt))
            if not good:
                continue
            found = _detect(checkpoint, [image for _, image in good])
            for (key, image), detections in zip(good, found, strict=True):
                size = (image.shape[2], image.shape[1])
                predictions.append(_prediction(key, size, detections, checkpoint))
    return predictions, skipped


def region_features(
    checkpoint: DetectorCheckpoint, image: torch.Tensor, boxes: Sequence[Box]
) -> np.ndarray:
    """(len(boxes), d) float32: the pyramid's features over each box (RoI-aligned on a
    REGION_GRID grid at the level its size belongs to), the model's view of that region."""
    model = checkpoint.predictor
    device = next(model.parameters()).device
    transform, backbone = parts(model)
    if not boxes:
        channels = int(getattr(backbone, "out_channels", 0))
        return np.empty((0, channels * REGION_GRID**2), dtype=np.float32)
    with torch.inference_mode(), autocast(device):
        batch, _ = transform([image.to(device)])
        features = backbone(batch.tensors)
    height, width = batch.image_sizes[0]
    scale = torch.tensor(
        [width / image.shape[2], height / image.shape[1]] * 2, dtype=torch.float32, device=device
    )
    rows = torch.tensor([[b.x0, b.y0, b.x1, b.y1] for b in boxes], device=device) * scale
    pool = MultiScaleRoIAlign(list(features), REGION_GRID, sampling_ratio=2)
    regions = pool({k: v.float() for k, v in features.items()}, [rows], batch.image_sizes)
    return regions.flatten(1).cpu().numpy().astype(np.float32)


def candidate_boxes(checkpoint: DetectorCheckpoint, image: torch.Tensor) -> list[Box]:
    """Every candidate box of one image, down to CANDIDATE_SCORE, with its score."""
    (detections,) = _detect(checkpoint, [image])
    size = (image.shape[2], image.shape[1])
    return list(_prediction("", size, detections, checkpoint).candidates.boxes)
