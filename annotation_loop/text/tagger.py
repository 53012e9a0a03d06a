"""Named-entity recognition: fine-tune a token classifier on labelled spans, predict spans.

Texts longer than a window are split into overlapping windows, so no token goes unseen.
Words, not sub-tokens, are tagged (BIO, on each word's first sub-token), so a predicted
span never cuts a word. A word's features are the last hidden state of that sub-token; a
text's embedding is the mean of its words' features.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from statistics import fmean
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from annotation_loop.errors import LoopError
from annotation_loop.learning.accelerator import autocast
from annotation_loop.learning.active_learning import margin_uncertainty, token_uncertainty_to_item
from annotation_loop.text.checkpoint import Head, TextCheckpoint
from annotation_loop.text.entity_metrics import EntityMetrics, entity_metrics
from annotation_loop.text.examples import SpanExample
from annotation_loop.text.pretrained import (
    InferenceModel,
    TextTrainConfig,
    TextTrainingReport,
    Window,
    batched,
    fine_tune,
    padding_collate,
)
from annotation_loop.text.spans import (
    IGNORED,
    OUTSIDE,
    CharRange,
    Span,
    bio_tags,
    first_subtokens,
    snap_to_words,
    spans_from_word_tags,
    token_tags,
    validate_spans,
    word_ranges,
)

HEAD: Head = "token_classification"


class EmptyTaggingSetError(LoopError):
    """There is no text to train the tagger on."""


@dataclass(frozen=True)
class SpanPrediction:
    key: str
    spans: list[Span]
    # The spans' mean score; with no spans, the words' mean probability of "O", so a
    # confident "nothing here" scores high.
    score: float
    uncertainty: float  # the largest margin uncertainty of its words; 0 with no words
    # Its words' mean features (1-D float16), zeros with no words; left out of equality.
    embedding: np.ndarray = field(compare=False, repr=False)


@dataclass(frozen=True)
class TextWords:
    """A text's words as the tagger reads them, with its features of each."""

    key: str
    ranges: list[CharRange]  # in text order
    features: np.ndarray  # (words, hidden) float32: each word's first sub-token's last hidden state


@dataclass(frozen=True)
class _EncodedText:
    """One text's tokenizer windows, and where their tokens lie in the text."""

    input_ids: list[torch.Tensor]  # one per window
    offsets: list[list[CharRange]]
    word_ids: list[list[int | None]]
    words: dict[int, CharRange]  # word id -> character range in the whole text

    @property
    def word_order(self) -> list[int]:
        return sorted(self.words)

    @property
    def ranges(self) -> list[CharRange]:
        """Its words' character ranges, in text order."""
        return [self.words[word] for word in self.word_order]


def _encode(
    tokenizer: Any, texts: Sequence[str], max_length: int, stride: int
) -> list[_EncodedText]:
    """Every text as windows of at most `max_length` tokens, `stride` shared by neighbours."""
    encoding = tokenizer(
        list(texts),
        truncation=True,
        max_length=max_length,
        stride=stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    windows_of: list[list[int]] = [[] for _ in texts]
    for window, text_index in enumerate(encoding["overflow_to_sample_mapping"]):
        windows_of[text_index].append(window)
    encoded = []
    for windows in windows_of:
        offsets = [encoding["offset_mapping"][w] for w in windows]
        word_ids = [encoding.word_ids(w) for w in windows]
        encoded.append(
            _EncodedText(
                input_ids=[torch.tensor(encoding["input_ids"][w]) for w in windows],
                offsets=offsets,
                word_ids=word_ids,
                words=word_ranges(zip(offsets, word_ids, strict=True)),
            )
        )
    return encoded


def _training_windows(
    examples: Sequence[SpanExample], tags: list[str], tokenizer: Any, config: TextTrainConfig
) -> list[Window]:
    """Every window of every example, with its tokens' tag ids as `labels`."""
    tag_index = {tag: i for i, tag in enumerate(tags)}
    encoded = _encode(tokenizer, [e.text for e in examples], config.max_length, config.stride)
    windows: list[Window] = []
    for example, text in zip(examples, encoded, strict=True):
        for input_ids, offsets, word_ids in zip(
            text.input_ids, text.offsets, text.word_ids, strict=True
        ):
            targets = token_tags(offsets, word_ids, example.spans, tag_index, text.words)
            # A window holding only the tail of one long word has nothing to learn from.
            if any(target != IGNORED for target in targets):
                windows.append({"input_ids": input_ids, "labels": torch.tensor(targets)})
    return windows


def train_tagger(
    examples: Sequence[SpanExample],
    entity_labels: Sequence[str],
    config: TextTrainConfig,
    init: TextCheckpoint | None = None,
    progress: bool = True,
) -> tuple[TextCheckpoint, TextTrainingReport]:
    """Fine-tune a BIO token classifier for `entity_labels` from `init` (or the base model).

    Empty texts are skipped. Seeds torch's global RNG with `config.seed` (the new head).
    """
    tags = bio_tags(entity_labels)
    usable = [
        SpanExample(
            e.key,
            e.text,
            tuple(validate_spans(e.text, e.spans, entity_labels, where=f"text {e.key!r}")),
        )
        for e in examples
        if e.text.strip()
    ]
    if not usable:
        raise EmptyTaggingSetError(
            "No labelled texts to train the tagger on: label some texts first"
        )
    return fine_tune(
        HEAD,
        tags,
        len(usable),
        lambda tokenizer: _training_windows(usable, tags, tokenizer, config),
        config,
        init,
        label_padding=IGNORED,
        progress=progress,
    )


@dataclass(frozen=True)
class _TextOutput:
    """The model's outputs for every token of a text's windows, one window after the other,
    on the CPU."""

    probabilities: torch.Tensor  # (tokens, tags): softmax over tags
    hidden: torch.Tensor  # (tokens, hidden): the last hidden state
    window_starts: list[int]  # where each window's tokens begin


@dataclass(frozen=True)
class _Words:
    """A text's words in text order, each read off its first sub-token."""

    ranges: list[CharRange]
    probabilities: torch.Tensor  # (words, tags)
    hidden: torch.Tensor  # (words, hidden)


def _window_outputs(
    loaded: InferenceModel, texts: list[_EncodedText], batch_size: int
) -> list[_TextOutput]:
    """Per text: the tag probabilities and last hidden states of its windows' tokens."""
    windows = [{"input_ids": ids} for text in texts for ids in text.input_ids]
    collate = padding_collate(loaded.tokenizer.pad_token_id)
    flat: list[tuple[torch.Tensor, torch.Tensor]] = []
    for batch_windows in batched(windows, batch_size):
        batch = {name: t.to(loaded.device) for name, t in collate(batch_windows).items()}
        with torch.inference_mode(), autocast(loaded.device):
            output = loaded.model(**batch, output_hidden_states=True)
            probabilities = output.logits.float().softmax(dim=-1).cpu()
            hidden = output.hidden_states[-1].float().cpu()
        for window_probabilities, window_hidden, tokens in zip(
            probabilities, hidden, batch_windows, strict=True
        ):
            length = len(tokens["input_ids"])  # padding off
            flat.append((window_probabilities[:length], window_hidden[:length]))
    per_text, used = [], 0
    for text in texts:
        probabilities_of, hidden_of = zip(*flat[used : used + len(text.input_ids)], strict=True)
        used += len(text.input_ids)
        per_text.append(
            _TextOutput(
                probabilities=torch.cat(probabilities_of),
                hidden=torch.cat(hidden_of),
                window_starts=list(accumulate((len(w) for w in probabilities_of[:-1]), initial=0)),
            )
        )
    return per_text


def _read_words(text: _EncodedText, output: _TextOutput) -> _Words:
    """Every word's outputs, in text order, read off its first sub-token.

    A word in several windows is read from the one where it has the most context: the
    largest number of tokens on its shorter side, so the window's edges weigh least.
    """
    best: dict[int, tuple[int, int]] = {}  # word -> (context, token index in `output`)
    for window_start, offsets, word_ids in zip(
        output.window_starts, text.offsets, text.word_ids, strict=True
    ):
        real = [position for position, word in enumerate(word_ids) if word is not None]
        for word, position in first_subtokens(offsets, word_ids, text.words).items():
            context = min(position - real[0], real[-1] - position)
            if word not in best or context > best[word][0]:
                best[word] = (context, window_start + position)
    # Every word's first sub-token is in some window.
    tokens = torch.tensor([best[word][1] for word in text.word_order], dtype=torch.long)
    return _Words(text.ranges, output.probabilities[tokens], output.hidden[tokens])


def _predict_words(
    checkpoint: TextCheckpoint,
    texts: Iterable[tuple[str, str]],
    batch_size: int,
    progress: bool,
) -> Iterator[tuple[str, str, _Words]]:
    """(key, text, its words' outputs) for every text, in order."""
    loaded = checkpoint.inference
    with tqdm(desc="tagging", unit="text", disable=not progress) as bar:
        for chunk in batched(texts, batch_size):
            encoded = _encode(
                loaded.tokenizer,
                [text for _, text in chunk],
                checkpoint.max_length,
                checkpoint.stride,
            )
            outputs = _window_outputs(loaded, encoded, batch_size)
            for (key, text), windows, output in zip(chunk, encoded, outputs, strict=True):
                yield key, text, _read_words(windows, output)
            bar.update(len(chunk))


def _span_prediction(key: str, text: str, words: _Words, tags: list[str]) -> SpanPrediction:
    probabilities, indices = words.probabilities.max(dim=-1)
    spans = spans_from_word_tags(
        text,
        [
            (start, end, tags[index], probability)
            for (start, end), index, probability in zip(
                words.ranges, indices.tolist(), probabilities.tolist(), strict=True
            )
        ],
    )
    if spans:
        score = fmean(span.score for span in spans if span.score is not None)
    else:  # no word at all (an empty text) is a certain "nothing here"
        outside = words.probabilities[:, tags.index(OUTSIDE)].tolist()
        score = fmean(outside) if outside else 1.0
    uncertainty = token_uncertainty_to_item([margin_uncertainty(words.probabilities.numpy())])
    # A sum over no words is a zero vector: a text with no words has no features.
    embedding = words.hidden.sum(dim=0) / max(len(words.ranges), 1)
    return SpanPrediction(
        key, spans, score, float(uncertainty[0]), embedding.to(torch.float16).numpy()
    )


def predict_spans(
    checkpoint: TextCheckpoint,
    texts: Iterable[tuple[str, str]],
    batch_size: int = 64,
    progress: bool = True,
) -> list[SpanPrediction]:
    """The entities the tagger finds in every (key, text), in order; whole words only; with
    each text's uncertainty and embedding."""
    return [
        _span_prediction(key, text, words, checkpoint.labels)
        for key, text, words in _predict_words(checkpoint, texts, batch_size, progress)
    ]


def word_features(
    checkpoint: TextCheckpoint,
    texts: Iterable[tuple[str, str]],
    batch_size: int = 64,
    progress: bool = True,
) -> list[TextWords]:
    """Every (key, text)'s words and the tagger's features of each, in order."""
    return [
        TextWords(key, words.ranges, words.hidden.numpy())
        for key, _, words in _predict_words(checkpoint, texts, batch_size, progress)
    ]


def word_tag_probabilities(
    checkpoint: TextCheckpoint, text: str
) -> tuple[list[CharRange], np.ndarray]:
    """`text`'s words as the tagger reads them, in text order, and each word's probability
    of every tag (`checkpoint.labels`, float32): what an answer about one span is read from."""
    ((_, _, words),) = _predict_words(checkpoint, [("text", text)], batch_size=1, progress=False)
    return words.ranges, words.probabilities.numpy()


def text_words(checkpoint: TextCheckpoint, text: str) -> list[CharRange]:
    """The words the tagger splits `text` into, in text order (`TextWords.ranges`)."""
    tokenizer = checkpoint.inference.tokenizer
    return _encode(tokenizer, [text], checkpoint.max_length, checkpoint.stride)[0].ranges


def entity_labels_of(checkpoint: TextCheckpoint) -> list[str]:
    """The entity labels a tagger checkpoint predicts, in order (its tags without BIO)."""
    return [tag.removeprefix("B-") for tag in checkpoint.labels if tag.startswith("B-")]


def evaluate_tagger(
    checkpoint: TextCheckpoint,
    examples: Sequence[SpanExample],
    batch_size: int = 64,
    progress: bool = True,
) -> EntityMetrics:
    """Exact-match entity scores of the tagger's spans against the examples'.

    True spans are first widened to whole words, as training sees them: a prediction can
    only ever cover whole words, and an annotation that cuts a word (or takes a trailing
    space) would otherwise never count as found.
    """
    truth, predicted = [], []
    texts = ((example.key, example.text) for example in examples)
    for example, (key, text, words) in zip(
        examples, _predict_words(checkpoint, texts, batch_size, progress), strict=True
    ):
        truth.append(snap_to_words(text, example.spans, words.ranges))
        predicted.append(_span_prediction(key, text, words, checkpoint.labels).spans)
    return entity_metrics(truth, predicted, entity_labels_of(checkpoint))
