"""Fine-tuning a CTC recogniser on annotated speech segments (batched; bf16 on a GPU)."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence

from annotation_loop.audio.checkpoint import TranscriptionCheckpoint
from annotation_loop.audio.ctc import features, load_base_model, load_checkpoint, save_checkpoint
from annotation_loop.audio.ctc import target_text as model_text
from annotation_loop.audio.decoding import SAMPLE_RATE
from annotation_loop.audio.train_config import RANDOM_TINY, TranscriptionTrainConfig
from annotation_loop.errors import ConfigurationError
from annotation_loop.learning.accelerator import autocast, best_device, describe

logger = logging.getLogger(__name__)

# The CTC loss ignores label positions holding this (padding of shorter transcripts).
IGNORED = -100


@dataclass(frozen=True)
class Clip:
    """One annotated segment: its 16 kHz samples and its transcript."""

    samples: np.ndarray
    text: str


@dataclass(frozen=True)
class CtcTrainingReport:
    device: str
    epochs: int
    clips: int  # segments trained on
    audio_seconds: float  # their total length
    seconds: float  # spent training, all epochs
    audio_seconds_per_second: float  # training throughput
    first_loss: float  # mean loss of the first epoch
    final_loss: float  # ... and of the last


def _starting_model(
    config: TranscriptionTrainConfig, init: TranscriptionCheckpoint | None
) -> tuple[nn.Module, Any]:
    """`init` continued when it is a CTC model of the same base model, else the base model
    (a pocketsphinx production version has no weights to continue from)."""
    if init is not None and init.recogniser == "ctc" and init.base_model == config.base_model:
        return load_checkpoint(init)
    if init is not None:
        logger.info(
            "The production model (%s, %s) is not one to continue: fine-tuning %s",
            init.recogniser,
            init.base_model,
            config.base_model,
        )
    return load_base_model(config.base_model, config.seed)


def _batch(clips: Sequence[Clip], processor: Any, device: torch.device) -> dict[str, torch.Tensor]:
    inputs = features(processor, [clip.samples for clip in clips])
    ids = [torch.tensor(processor.tokenizer(clip.text).input_ids) for clip in clips]
    inputs["labels"] = pad_sequence(ids, batch_first=True, padding_value=IGNORED)
    return {name: tensor.to(device) for name, tensor in inputs.items()}


def fine_tune_ctc(
    clips: Sequence[Clip],
    config: TranscriptionTrainConfig,
    init: TranscriptionCheckpoint | None,
    speech_label: str,
) -> tuple[TranscriptionCheckpoint, CtcTrainingReport]:
    """Fine-tunes `init` (or `config.base_model`) on the clips with AdamW: the checkpoint and
    its report. Clips are batched by similar length, so little of a batch is padding."""
    torch.manual_seed(config.seed)
    model, processor = _starting_model(config, init)
    usable = [
        Clip(clip.samples, text)
        for clip in clips
        if (text := model_text(clip.text, processor)) and len(clip.samples) > SAMPLE_RATE // 10
    ]
    if not usable:
        raise ConfigurationError(
            "Nothing to fine-tune on: no annotated speech segment has both audio and a "
            "transcript in the model's alphabet; transcribe some segments in Label Studio"
        )
    if config.freeze_feature_encoder and config.base_model != RANDOM_TINY:
        model.freeze_feature_encoder()  # type: ignore[operator]
    device = best_device()
    model.to(device).train()
    optimizer = torch.optim.AdamW(
        [p for p in model.parameters() if p.requires_grad], lr=config.learning_rate
    )
    by_length = sorted(usable, key=lambda clip: len(clip.samples))
    batches = [
        by_length[start : start + config.batch_size]
        for start in range(0, len(by_length), config.batch_size)
    ]
    order = random.Random(config.seed)
    losses: list[float] = []
    started = time.perf_counter()
    for _ in range(config.epochs):
        order.shuffle(batches)
        loss_sum = torch.zeros((), device=device)
        for batch in batches:
            with autocast(device):
                loss = model(**_batch(batch, processor, device)).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            loss_sum += loss.detach() * len(batch)
        losses.append(loss_sum.item() / len(usable))
    seconds = time.perf_counter() - started
    audio_seconds = sum(len(clip.samples) for clip in usable) / SAMPLE_RATE
    report = CtcTrainingReport(
        device=describe(device),
        epochs=config.epochs,
        clips=len(usable),
        audio_seconds=audio_seconds,
        seconds=seconds,
        audio_seconds_per_second=audio_seconds * config.epochs / seconds,
        first_loss=losses[0],
        final_loss=losses[-1],
    )
    model.eval()
    return save_checkpoint(model.cpu(), processor, config.base_model, speech_label), report
