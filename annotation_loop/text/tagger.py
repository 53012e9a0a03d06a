"""Named-entity recognition: fine-tune a token classifier on labelled spans, predict spans.

Texts longer than a window are split into overlapping windows, so no token goes unseen.
Words, not sub-tokens, are tagged (BIO, on each word's first sub-token), so a predicted
span never cuts a word.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from statistics import fmean
from typing import Any

import torch
from tqdm import tqdm

from annotation_loop.accelerator import autocast, best_device
from annotation_loop.errors import LoopError
from annotation_loop.text.entity_metrics import EntityMetrics, entity_metrics
from annotation_loop.text.examples import SpanExample
from annotation_loop.text.pretrained import (
    Head,
    TextCheckpoint,
    TextTrainConfig,
    TextTrainingReport,
    Window,
    batched,
    fine_tune,
    load_checkpoint,
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
class _WordPrediction:
    start: int
    end: int
    tag: str
    probability: float  # of `tag`
    outside: float  # probability of "O"


def _window_probabilities(
    model: torch.nn.Module,
    texts: list[_EncodedText],
    pad_id: int,
    batch_size: int,
    device: torch.device,
) -> list[list[torch.Tensor]]:
    """Per text, per window: the softmax over tags of every token, on the CPU."""
    windows = [{"input_ids": ids} for text in texts for ids in text.input_ids]
    collate = padding_collate(pad_id)
    flat: list[torch.Tensor] = []
    for batch_windows in batched(windows, batch_size):
        batch = {name: t.to(device) for name, t in collate(batch_windows).items()}
        with torch.inference_mode(), autocast(device):
            probabilities = model(**batch).logits.float().softmax(dim=-1).cpu()
        for window, tokens in zip(probabilities, batch_windows, strict=True):
            flat.append(window[: len(tokens["input_ids"])])  # padding off
    per_text, used = [], 0
    for text in texts:
        per_text.append(flat[used : used + len(text.input_ids)])
        used += len(text.input_ids)
    return per_text


def _word_predictions(
    text: _EncodedText, probabilities: list[torch.Tensor], tags: list[str]
) -> list[_WordPrediction]:
    """Every word's tag, in text order, read off its first sub-token.

    A word in several windows is read from the one where it has the most context: the
    largest number of tokens on its shorter side, so the window's edges weigh least.
    """
    best: dict[int, tuple[int, torch.Tensor]] = {}  # word -> (context, tag probabilities)
    for window, offsets, word_ids in zip(probabilities, text.offsets, text.word_ids, strict=True):
        real = [position for position, word in enumerate(word_ids) if word is not None]
        for word, position in first_subtokens(offsets, word_ids, text.words).items():
            context = min(position - real[0], real[-1] - position)
            if word not in best or context > best[word][0]:
                best[word] = (context, window[position])
    outside = tags.index(OUTSIDE)
    predictions = []
    for word in text.word_order:  # every word's first sub-token is in some window
        row = best[word][1]
        probability, tag = row.max(dim=-1)
        start, end = text.words[word]
        predictions.append(
            _WordPrediction(start, end, tags[int(tag)], float(probability), float(row[outside]))
        )
    return predictions


def _predict_words(
    checkpoint: TextCheckpoint,
    texts: Iterable[tuple[str, str]],
    batch_size: int,
    progress: bool,
) -> Iterator[tuple[str, str, _EncodedText, list[_WordPrediction]]]:
    """(key, text, its windows, its words' predictions) for every text, in order."""
    model, tokenizer = load_checkpoint(checkpoint)
    device = best_device()
    model.to(device)
    with tqdm(desc="tagging", unit="text", disable=not progress) as bar:
        for chunk in batched(texts, batch_size):
            encoded = _encode(
                tokenizer, [text for _, text in chunk], checkpoint.max_length, checkpoint.stride
            )
            probabilities = _window_probabilities(
                model, encoded, tokenizer.pad_token_id, batch_size, device
            )
            for (key, text), windows, text_probabilities in zip(
                chunk, encoded, probabilities, strict=True
            ):
                yield (
                    key,
                    text,
                    windows,
                    _word_predictions(windows, text_probabilities, checkpoint.labels),
                )
            bar.update(len(chunk))


def _span_prediction(key: str, text: str, words: list[_WordPrediction]) -> SpanPrediction:
    spans = spans_from_word_tags(text, [(w.start, w.end, w.tag, w.probability) for w in words])
    if spans:
        score = fmean(span.score for span in spans if span.score is not None)
    else:  # no word at all (an empty text) is a certain "nothing here"
        score = fmean(w.outside for w in words) if words else 1.0
    return SpanPrediction(key, spans, score)


def predict_spans(
    checkpoint: TextCheckpoint,
    texts: Iterable[tuple[str, str]],
    batch_size: int = 64,
    progress: bool = True,
) -> list[SpanPrediction]:
    """The entities the tagger finds in every (key, text), in order; whole words only."""
    return [
        _span_prediction(key, text, words)
        for key, text, _, words in _predict_words(checkpoint, texts, batch_size, progress)
    ]


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
    for example, (key, text, windows, words) in zip(
        examples, _predict_words(checkpoint, texts, batch_size, progress), strict=True
    ):
        ranges = [windows.words[word] for word in windows.word_order]
        truth.append(snap_to_words(text, example.spans, ranges))
        predicted.append(_span_prediction(key, text, words).spans)
    return entity_metrics(truth, predicted, entity_labels_of(checkpoint))
