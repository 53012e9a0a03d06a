"""The image model's compute-only throughput, what the batched paths are measured against.

Synthetic batches already on the best device, the model set up as the pipelines set it up
(`prepare_training`, `ClassifierCheckpoint.predictor`: channels_last and bf16 autocast on a
GPU), so nothing of reading, decoding or host-to-device copies is in these figures.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from annotation_loop.learning.accelerator import autocast, best_device
from annotation_loop.vision.checkpoint import ClassifierCheckpoint
from annotation_loop.vision.classifier import (
    TrainConfig,
    model_input,
    prepare_training,
    train_step,
)

WARM_UP_BATCHES = 3  # cuDNN picks its kernels and the allocator fills on the first ones


def _images_per_second(
    step: Callable[[], object], device: torch.device, batch_size: int, batches: int
) -> float:
    for _ in range(WARM_UP_BATCHES):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    for _ in range(batches):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return batch_size * batches / (time.perf_counter() - started)


def _random_images(batch_size: int, image_size: int, device: torch.device) -> torch.Tensor:
    return model_input(torch.randn(batch_size, 3, image_size, image_size), device)


def inference_compute_only(
    checkpoint: ClassifierCheckpoint, batch_size: int, batches: int = 10
) -> float:
    """Images/s of the prediction forward pass (features and head)."""
    device = best_device()
    model = checkpoint.predictor
    images = _random_images(batch_size, checkpoint.image_size, device)

    def forward() -> None:
        with torch.inference_mode(), autocast(device):
            model.head(model.features(images))

    return _images_per_second(forward, device, batch_size, batches)


def training_compute_only(labels: list[str], config: TrainConfig, batches: int = 10) -> float:
    """Images/s of `config`'s optimiser steps (forward, backward, update)."""
    model, optimizer, device = prepare_training(labels, config)
    images = _random_images(config.batch_size, config.image_size, device)
    targets = torch.randint(len(labels), (config.batch_size,), device=device)
    return _images_per_second(
        lambda: train_step(model, optimizer, images, targets, device),
        device,
        config.batch_size,
        batches,
    )
