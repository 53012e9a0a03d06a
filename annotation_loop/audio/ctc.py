"""CTC speech recognisers (wav2vec2-style) from transformers: loading one from the hub, a
local folder or a tiny random config, storing it as a checkpoint, and transcribing with it.

Hub ids and folders go through the same `from_pretrained` call; offline, a hub id is one
line saying which setting to change.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from annotation_loop.audio.checkpoint import TranscriptionCheckpoint
from annotation_loop.audio.decoding import SAMPLE_RATE
from annotation_loop.audio.text_norm import normalise
from annotation_loop.audio.train_config import POCKETSPHINX, RANDOM_TINY
from annotation_loop.errors import ConfigurationError
from annotation_loop.learning.accelerator import autocast, best_device

# The tiny model's characters: "|" separates words, as in wav2vec2's own vocabularies.
TINY_CHARACTERS = "abcdefghijklmnopqrstuvwxyz'"


@dataclass(frozen=True)
class CtcInference:
    """A checkpoint's model loaded for transcription."""

    model: nn.Module  # in eval mode, on `device`
    processor: Any  # feature extractor + CTC tokenizer
    device: torch.device


@dataclass(frozen=True)
class ClipTranscript:
    text: str
    confidence: float  # mean max-softmax probability of the frames that emit a character
    embedding: np.ndarray  # mean of the last hidden states over the clip's frames, float32


def _quiet_transformers() -> None:
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _tiny_model(seed: int) -> tuple[nn.Module, Any]:
    """A 2-layer, 32-wide wav2vec2 CTC model with random weights and a character vocabulary."""
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    vocab = {"<pad>": 0, "<unk>": 1, "|": 2} | {c: i + 3 for i, c in enumerate(TINY_CHARACTERS)}
    with tempfile.TemporaryDirectory() as folder:
        vocab_file = Path(folder) / "vocab.json"
        vocab_file.write_text(json.dumps(vocab))
        tokenizer = Wav2Vec2CTCTokenizer(
            str(vocab_file), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|"
        )
    features = Wav2Vec2FeatureExtractor(
        feature_size=1, sampling_rate=SAMPLE_RATE, do_normalize=True, return_attention_mask=True
    )
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        feat_extract_norm="layer",
        mask_time_prob=0.0,  # clips of a second or two: nothing to spare for masking
        pad_token_id=tokenizer.pad_token_id,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
    )
    torch.manual_seed(seed)
    return Wav2Vec2ForCTC(config), Wav2Vec2Processor(features, tokenizer)


def load_base_model(base_model: str, seed: int) -> tuple[nn.Module, Any]:
    """(CTC model, processor) to fine-tune: the tiny random one, or `base_model` from the hub
    or a local folder; a `ConfigurationError` naming the setting when it cannot be loaded."""
    from transformers import AutoModelForCTC, AutoProcessor

    _quiet_transformers()
    if base_model == RANDOM_TINY:
        return _tiny_model(seed)
    try:
        processor = AutoProcessor.from_pretrained(base_model)
        model = AutoModelForCTC.from_pretrained(
            base_model, ctc_loss_reduction="mean", ctc_zero_infinity=True
        )
    except (OSError, ValueError) as exc:  # no hub access, no such model, not a CTC model
        raise ConfigurationError(
            f"train_config.base_model {base_model!r} could not be loaded as a CTC model from "
            f"the Hugging Face hub or a local folder ({str(exc).splitlines()[0]}): set it to "
            f"a local folder holding the model, set HF_HOME to a cache that has it, or use "
            f"{POCKETSPHINX!r} (offline baseline) or {RANDOM_TINY!r}"
        ) from None
    return model, processor


def save_checkpoint(
    model: nn.Module, processor: Any, base_model: str, speech_label: str
) -> TranscriptionCheckpoint:
    _quiet_transformers()
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)  # type: ignore[operator]
        processor.save_pretrained(folder)
        files = {path.name: path.read_bytes() for path in Path(folder).iterdir() if path.is_file()}
    return TranscriptionCheckpoint("ctc", base_model, speech_label, files)


def load_checkpoint(checkpoint: TranscriptionCheckpoint) -> tuple[nn.Module, Any]:
    """(model in eval mode on the CPU, processor) from a CTC checkpoint's files."""
    from transformers import AutoModelForCTC, AutoProcessor

    _quiet_transformers()
    with tempfile.TemporaryDirectory() as folder:
        for name, content in checkpoint.files.items():
            (Path(folder) / name).write_bytes(content)
        processor = AutoProcessor.from_pretrained(folder)
        model = AutoModelForCTC.from_pretrained(folder)
    return model.eval(), processor


def load_for_inference(checkpoint: TranscriptionCheckpoint) -> CtcInference:
    model, processor = load_checkpoint(checkpoint)
    device = best_device()
    return CtcInference(model.to(device), processor, device)


def target_text(text: str, processor: Any) -> str:
    """`text` in the model's alphabet: normalised, upper-cased for upper-case vocabularies
    (facebook/wav2vec2-base-960h), characters it cannot write left out."""
    vocab = processor.tokenizer.get_vocab()
    normal = normalise(text)
    if not any(token.islower() for token in vocab if len(token) == 1):
        normal = normal.upper()
    kept = "".join(c for c in normal if c == " " or c in vocab)
    return " ".join(kept.split())


def features(processor: Any, clips: Sequence[np.ndarray]) -> dict[str, torch.Tensor]:
    """The padded batch of model inputs (`input_values`, with `attention_mask` when the
    model takes one) for 16 kHz clips."""
    batch = processor(list(clips), sampling_rate=SAMPLE_RATE, padding=True, return_tensors="pt")
    return {name: batch[name] for name in ("input_values", "attention_mask") if name in batch}


def transcribe_clips(inference: CtcInference, clips: Sequence[np.ndarray]) -> list[ClipTranscript]:
    """Greedy CTC transcripts of one batch of clips, with confidences and embeddings."""
    model, processor, device = inference.model, inference.processor, inference.device
    inputs = {name: t.to(device) for name, t in features(processor, clips).items()}
    with torch.inference_mode(), autocast(device):
        output = model(**inputs, output_hidden_states=True)
    probabilities = output.logits.float().softmax(-1)
    best, ids = probabilities.max(-1)
    lengths = model._get_feat_extract_output_lengths(  # type: ignore[operator]
        torch.tensor([len(clip) for clip in clips])
    ).tolist()
    hidden = output.hidden_states[-1].float()
    blank = processor.tokenizer.pad_token_id
    texts = processor.batch_decode(ids.cpu())
    transcripts = []
    for row, (text, length) in enumerate(zip(texts, lengths, strict=True)):
        length = max(1, min(int(length), ids.shape[1]))
        emitting = ids[row, :length] != blank
        frames = best[row, :length][emitting] if emitting.any() else best[row, :length]
        transcripts.append(
            ClipTranscript(
                text=" ".join(text.lower().split()),
                confidence=float(frames.mean()),
                embedding=hidden[row, :length].mean(0).cpu().numpy(),
            )
        )
    return transcripts
