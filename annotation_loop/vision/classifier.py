"""Fine-tune an image classifier on labelled images and predict labels for new ones."""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm  # not tqdm.auto: it calls iter() on a DataLoader twice

from annotation_loop.data.read_ahead import prefetch
from annotation_loop.errors import ConfigurationError, LoopError, UnknownLabelError
from annotation_loop.learning.accelerator import autocast, best_device, describe
from annotation_loop.learning.active_learning import margin_uncertainty
from annotation_loop.vision.backbones import (
    SplitClassifier,
    build_classifier,
    head_prefix,
    split_head,
)
from annotation_loop.vision.checkpoint import ClassifierCheckpoint
from annotation_loop.vision.fusion import fuse_for_inference
from annotation_loop.vision.images import (
    Batch,
    ImageItem,
    eval_transform,
    image_loader,
    train_transform,
)
from annotation_loop.vision.train_config import TrainConfig

# Batches decoded per DataLoader while predicting: bounds the image bytes held in memory.
PREDICT_CHUNK_BATCHES = 16


class EmptyTrainingSetError(LoopError):
    """There is nothing to train on."""


@dataclass(frozen=True)
class LabelledImage:
    key: str
    data: bytes
    label: str


@dataclass(frozen=True)
class ImagePrediction:
    key: str
    label: str
    score: float  # softmax probability of `label`
    uncertainty: float  # margin uncertainty of the softmax, in [0, 1]
    # The pooled backbone features the head reads (1-D float16); left out of equality.
    embedding: np.ndarray = field(compare=False, repr=False)


@dataclass(frozen=True)
class TrainingReport:
    device: str
    epochs: int
    examples: int  # images trained on, corrupt ones excluded
    images_per_second: float
    final_loss: float  # mean loss over the last epoch
    skipped_keys: list[str]  # images that could not be decoded


# channels_last on every device: it is what cuDNN's fast convolutions take, and on the CPU
# oneDNN runs EfficientNet's depthwise convolutions about twice as fast in it.
def _to_device(model: nn.Module, device: torch.device) -> nn.Module:
    return model.to(device).to(memory_format=torch.channels_last)


def load_predictor(checkpoint: ClassifierCheckpoint) -> SplitClassifier:
    """`checkpoint`'s classifier on the best device, in eval mode, cut at its head, with its
    batch norms folded into the convolutions (fuse_for_inference)."""
    device = best_device()
    split = split_head(checkpoint.build_module(), checkpoint.arch)
    return SplitClassifier(
        features=_to_device(fuse_for_inference(split.features), device),
        head=_to_device(split.head, device),
    )


def model_input(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A batch of images as the model on `device` takes it (channels_last)."""
    return images.to(device, non_blocking=True, memory_format=torch.channels_last)


def _targets(examples: Sequence[LabelledImage], labels: Sequence[str]) -> list[ImageItem]:
    index = {label: i for i, label in enumerate(labels)}
    items = []
    for example in examples:
        if example.label not in index:
            raise UnknownLabelError(
                f"Image {example.key} is labelled {example.label!r}, which is not one of "
                f"{list(labels)}: fix the annotation or add the label"
            )
        items.append(ImageItem(example.key, example.data, index[example.label]))
    return items


def _check_labels(labels: Sequence[str]) -> None:
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ConfigurationError(
            f"A classifier needs at least two distinct labels, got {list(labels)}"
        )


def _starting_model(
    labels: list[str], config: TrainConfig, init: ClassifierCheckpoint | None
) -> nn.Module:
    if init is None:
        return build_classifier(config.arch, len(labels), config.image_size)
    if init.labels != labels:
        raise ConfigurationError(
            f"The previous model predicts {init.labels}, not {labels}: "
            "train from scratch when the label list changes"
        )
    if (init.arch, init.image_size) != (config.arch, config.image_size):
        raise ConfigurationError(
            f"The previous model is {init.arch} at {init.image_size}px, not {config.arch} at "
            f"{config.image_size}px: train from scratch when the architecture changes"
        )
    return init.build_module()


def prepare_training(
    labels: list[str], config: TrainConfig, init: ClassifierCheckpoint | None = None
) -> tuple[nn.Module, torch.optim.Optimizer, torch.device]:
    """The model to fine-tune (from `init` or the pretrained backbone), on the best device
    and in training mode, with its optimiser over the parameters `config` trains.

    Seeds torch's global RNG with `config.seed`, so runs on the CPU are reproducible.
    """
    torch.manual_seed(config.seed)  # the new head's initialisation
    model = _starting_model(labels, config, init)
    if config.freeze_backbone:
        head = head_prefix(config.arch)
        for name, parameter in model.named_parameters():
            parameter.requires_grad_(name.startswith(head))
    device = best_device()
    model = _to_device(model, device)
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate
    )
    # A frozen backbone is a fixed feature extractor: keep its batch-norm statistics and
    # disable its stochastic depth.
    model.train(not config.freeze_backbone)
    return model, optimizer, device


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    images: torch.Tensor,
    targets: torch.Tensor,
    device: torch.device,
) -> torch.Tensor:
    """One optimiser step on a batch already on `device`; returns the batch's mean loss,
    still on the device (reading it every step would stall a GPU)."""
    with autocast(device):
        logits = model(images)
    loss = F.cross_entropy(logits.float(), targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach()


def _train_epoch(
    model: nn.Module,
    loader: Iterable[Batch],
    optimizer: torch.optim.Optimizer,
    device: torch.device,
    bar: tqdm[Any],
    skipped: set[str],
) -> tuple[float, int]:
    """One pass over `loader`: (mean loss, images trained on); adds corrupt keys to `skipped`."""
    loss_sum, count = torch.zeros((), device=device), 0
    for batch in loader:
        skipped.update(batch.corrupt_keys)
        if batch.keys:
            images = model_input(batch.images, device)
            targets = batch.targets.to(device, non_blocking=True)
            loss_sum += train_step(model, optimizer, images, targets, device) * len(batch.keys)
            count += len(batch.keys)
        bar.update()
    return (loss_sum.item() / count if count else float("nan")), count


def train_classifier(
    examples: Sequence[LabelledImage],
    labels: Sequence[str],
    config: TrainConfig,
    init: ClassifierCheckpoint | None = None,
    progress: bool = True,
) -> tuple[ClassifierCheckpoint, TrainingReport]:
    """Fine-tune from `init` (or the pretrained backbone) on `examples`.

    Seeds torch's global RNG with `config.seed`, so runs on the CPU are reproducible.
    """
    labels = list(labels)
    _check_labels(labels)
    items = _targets(examples, labels)
    if not items:
        raise EmptyTrainingSetError("No labelled images to train on: annotate some first")
    model, optimizer, device = prepare_training(labels, config, init)
    loader = image_loader(
        items,
        train_transform(config.image_size),
        config.batch_size,
        config.num_workers,
        shuffle_seed=config.seed,
    )
    skipped: set[str] = set()
    started = time.perf_counter()
    for epoch in range(config.epochs):
        description = f"epoch {epoch + 1}/{config.epochs}"
        with tqdm(total=len(loader), desc=description, unit="batch", disable=not progress) as bar:
            final_loss, count = _train_epoch(model, loader, optimizer, device, bar, skipped)
            if count == 0:
                raise EmptyTrainingSetError(
                    f"None of the {len(items)} training images could be decoded "
                    f"(e.g. {min(skipped)}): check the files in the bucket"
                )
            bar.set_postfix(loss=f"{final_loss:.3f}")
    elapsed = time.perf_counter() - started
    checkpoint = ClassifierCheckpoint(
        arch=config.arch,
        labels=labels,
        image_size=config.image_size,
        state_dict={name: t.detach().cpu().contiguous() for name, t in model.state_dict().items()},
    )
    report = TrainingReport(
        device=describe(device),
        epochs=config.epochs,
        examples=count,
        images_per_second=count * config.epochs / elapsed,
        final_loss=final_loss,
        skipped_keys=sorted(skipped),
    )
    return checkpoint, report


def _default_workers(device: torch.device) -> int:
    # On a GPU, decoding in worker processes overlaps the forward passes; on the CPU the
    # forward pass already uses every core, so extra processes only compete with it.
    return min(8, (os.cpu_count() or 1) - 1) if device.type == "cuda" else 0


def predict_images(
    checkpoint: ClassifierCheckpoint,
    images: Iterable[tuple[str, bytes]],
    batch_size: int = 128,
    progress: bool = True,
    num_workers: int | None = None,
) -> tuple[list[ImagePrediction], list[str]]:
    """Top label, its probability, the margin uncertainty and the pooled backbone features
    of each `(key, bytes)`, plus the keys of corrupt images.

    `images` is consumed as the model goes, read ahead in a thread: at most two chunks of
    PREDICT_CHUNK_BATCHES batches of bytes are in memory, whatever their number.
    `num_workers=None` picks a sensible number of decoding processes for the device.
    """
    device = best_device()
    model = checkpoint.predictor
    transform = eval_transform(checkpoint.image_size)
    workers = _default_workers(device) if num_workers is None else num_workers
    chunk_size = batch_size * PREDICT_CHUNK_BATCHES
    source = prefetch(iter(images), limit=chunk_size)
    predictions: list[ImagePrediction] = []
    skipped: list[str] = []
    with (
        torch.inference_mode(),
        tqdm(desc="predict", unit="images", disable=not progress) as bar,
    ):
        while chunk := [ImageItem(key, data, -1) for key, data in islice(source, chunk_size)]:
            for batch in image_loader(chunk, transform, batch_size, workers):
                skipped.extend(batch.corrupt_keys)
                bar.update(len(batch.keys) + len(batch.corrupt_keys))
                if batch.keys:
                    predictions.extend(_predict_batch(model, batch, device, checkpoint.labels))
    return predictions, skipped


def _predict_batch(
    model: SplitClassifier, batch: Batch, device: torch.device, labels: Sequence[str]
) -> Iterator[ImagePrediction]:
    with autocast(device):
        features = model.features(model_input(batch.images, device))
        logits = model.head(features)
    probabilities = logits.float().softmax(dim=1)
    scores, indices = probabilities.max(dim=1)
    uncertainties = margin_uncertainty(probabilities.cpu().numpy())
    embeddings = features.to(torch.float16).cpu().numpy()
    for key, index, score, uncertainty, embedding in zip(
        batch.keys, indices.tolist(), scores.tolist(), uncertainties, embeddings, strict=True
    ):
        yield ImagePrediction(key, labels[index], score, float(uncertainty), embedding)
