"""Fine-tune a transformer to classify texts, and predict a label for new ones.

A text longer than the model's window is split into overlapping windows: each is trained
on with the text's label, and at prediction time the windows' probabilities are averaged,
so no part of a long text is ever cut off. A text's embedding is likewise the mean of the
last hidden state over the real tokens of all its windows.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from annotation_loop.errors import ConfigurationError, LoopError, UnknownLabelError
from annotation_loop.learning.accelerator import autocast
from annotation_loop.learning.active_learning import margin_uncertainty
from annotation_loop.learning.classification_metrics import ClassificationMetrics, compute_metrics
from annotation_loop.text.checkpoint import Head, TextCheckpoint
from annotation_loop.text.examples import TextExample
from annotation_loop.text.pretrained import (
    TextTrainConfig,
    TextTrainingReport,
    Window,
    batched,
    fine_tune,
    padding_collate,
)

HEAD: Head = "sequence_classification"


@dataclass(frozen=True)
class TextPrediction:
    key: str
    label: str
    score: float  # probability of `label`, averaged over the text's windows
    uncertainty: float  # margin uncertainty of the averaged probabilities, in [0, 1]
    # The last hidden state averaged over the text's real tokens (1-D float16); left out of
    # equality.
    embedding: np.ndarray = field(compare=False, repr=False)


@dataclass(frozen=True)
class _Windows:
    input_ids: list[list[int]]
    text_index: list[int]  # which input text each window comes from


def _split(tokenizer: Any, texts: Sequence[str], max_length: int, stride: int) -> _Windows:
    """Token windows of at most `max_length` covering every token of every text."""
    encoding = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
    )
    return _Windows(encoding["input_ids"], list(encoding["overflow_to_sample_mapping"]))


def _check_labels(labels: Sequence[str]) -> None:
    if len(labels) < 2 or len(set(labels)) != len(labels):
        raise ConfigurationError(
            f"A text classifier needs at least two distinct labels, got {list(labels)}: "
            "fix the label list"
        )


def _targets(examples: Sequence[TextExample], labels: Sequence[str]) -> list[int]:
    index = {label: i for i, label in enumerate(labels)}
    for example in examples:
        if example.label not in index:
            raise UnknownLabelError(
                f"Text {example.key} is labelled {example.label!r}, which is not one of "
                f"{list(labels)}: fix the annotation or add the label"
            )
    return [index[example.label] for example in examples]


def train_text_classifier(
    examples: Sequence[TextExample],
    labels: Sequence[str],
    config: TextTrainConfig,
    init: TextCheckpoint | None = None,
    progress: bool = True,
) -> tuple[TextCheckpoint, TextTrainingReport]:
    """Fine-tune from `init` (or `config.base_model`) on `examples`.

    Seeds torch's global RNG with `config.seed`, so runs on the CPU are reproducible.
    """
    labels = list(labels)
    _check_labels(labels)
    targets = _targets(examples, labels)
    if not examples:
        raise LoopError("No labelled texts to train on: label some texts first")

    def windows(tokenizer: Any) -> list[Window]:
        split = _split(tokenizer, [e.text for e in examples], config.max_length, config.stride)
        return [
            {"input_ids": torch.tensor(ids), "labels": torch.tensor(targets[text])}
            for ids, text in zip(split.input_ids, split.text_index, strict=True)
        ]

    return fine_tune(HEAD, labels, len(examples), windows, config, init, progress=progress)


def predict_texts(
    checkpoint: TextCheckpoint,
    texts: Iterable[tuple[str, str]],
    batch_size: int = 64,
    progress: bool = True,
) -> list[TextPrediction]:
    """The most probable label, its probability, the margin uncertainty and the embedding of
    each `(key, text)`, in input order.

    Empty (or whitespace-only) texts get no prediction. A long text's windows are scored
    separately and their probabilities averaged, weighted by each window's token count.
    """
    keyed = [(key, text) for key, text in texts if text.strip()]
    if not keyed:
        return []
    loaded = checkpoint.inference
    device = loaded.device
    split = _split(
        loaded.tokenizer, [text for _, text in keyed], checkpoint.max_length, checkpoint.stride
    )
    collate = padding_collate(loaded.tokenizer.pad_token_id)
    # Windows of similar length batched together need little padding.
    by_length = sorted(range(len(split.input_ids)), key=lambda w: len(split.input_ids[w]))
    # Per text, sums over its windows' real tokens: of probabilities (each window's weighted
    # by its token count), of hidden states, and of tokens.
    weighted = torch.zeros(len(keyed), len(checkpoint.labels), device=device)
    hidden_sums = torch.zeros(len(keyed), loaded.hidden_size, device=device)
    weights = torch.zeros(len(keyed), device=device)
    with torch.inference_mode():
        for batch_windows in tqdm(
            list(batched(by_length, batch_size)),
            desc="predict",
            unit="batch",
            disable=not progress,
        ):
            batch = collate(
                [{"input_ids": torch.tensor(split.input_ids[w])} for w in batch_windows]
            )
            batch = {name: tensor.to(device) for name, tensor in batch.items()}
            with autocast(device):
                output = loaded.model(**batch, output_hidden_states=True)
            mask = batch["attention_mask"]
            tokens = mask.sum(dim=1).float()
            text_index = torch.tensor([split.text_index[w] for w in batch_windows], device=device)
            weighted.index_add_(
                0, text_index, output.logits.float().softmax(dim=1) * tokens[:, None]
            )
            hidden = output.hidden_states[-1].float() * mask[:, :, None]
            hidden_sums.index_add_(0, text_index, hidden.sum(dim=1))
            weights.index_add_(0, text_index, tokens)
    probabilities = weighted / weights[:, None]
    scores, indices = probabilities.max(dim=1)
    uncertainties = margin_uncertainty(probabilities.cpu().numpy())
    embeddings = (hidden_sums / weights[:, None]).to(torch.float16).cpu().numpy()
    return [
        TextPrediction(key, checkpoint.labels[index], score, float(uncertainty), embedding)
        for (key, _), index, score, uncertainty, embedding in zip(
            keyed, indices.tolist(), scores.tolist(), uncertainties, embeddings, strict=True
        )
    ]


def evaluate_text_classifier(
    checkpoint: TextCheckpoint,
    examples: Sequence[TextExample],
    batch_size: int = 64,
    progress: bool = True,
) -> ClassificationMetrics:
    """Accuracy, per-class scores and confusion matrix of the checkpoint on `examples`.

    Empty texts get no prediction, so they are left out of the metrics.
    """
    scored = [example for example in examples if example.text.strip()]
    predictions = predict_texts(checkpoint, [(e.key, e.text) for e in scored], batch_size, progress)
    return compute_metrics(
        [e.label for e in scored], [p.label for p in predictions], checkpoint.labels
    )
