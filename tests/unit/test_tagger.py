"""The entity tagger: exact-match entity scores, and MiniLM fine-tuned on the CPU on synthetic
sentences about people and places."""

from __future__ import annotations

import random
from dataclasses import replace

import numpy as np
import pytest
import torch
from transformers import AutoTokenizer

from annotation_loop.errors import ConfigurationError, LoopError, UnknownLabelError
from annotation_loop.task_types import Example, get_task_type
from annotation_loop.text.entity_metrics import entity_metrics, plot_entity_scores
from annotation_loop.text.examples import SpanExample
from annotation_loop.text.pretrained import (
    TextCheckpoint,
    TextTrainConfig,
    load_checkpoint,
    model_path,
)
from annotation_loop.text.spans import Span, bio_tags
from annotation_loop.text.tagger import (
    entity_labels_of,
    evaluate_tagger,
    predict_spans,
    text_words,
    train_tagger,
    word_features,
)

LABELS = ["PER", "LOC"]
PEOPLE = ["Alice", "Bob", "Carol", "David", "Emma", "Frank", "Grace", "Henry", "Irene", "Jack"]
PLACES = ["Paris", "Berlin", "Tokyo", "London", "Madrid", "Rome", "Vienna", "Oslo", "Lisbon"]
TEMPLATES = [
    "I met {person} in {place}",
    "{person} lives in {place}",
    "Yesterday {person} flew to {place}",
    "{person} and I visited {place} last year",
    "We saw {person} near {place} today",
]
FILLER = "the weather was nice and the food was good " * 6
# Measured: held-out F1 1.0 after 3 epochs on 41 texts (chance is about 0).
CONFIG = TextTrainConfig(max_length=32, stride=8, epochs=3, batch_size=8, learning_rate=1e-4)
MIN_F1 = 0.6


def sentence(key: str, template: str, person: str, place: str, prefix: str = "") -> SpanExample:
    text = prefix + template.format(person=person, place=place)
    at_person, at_place = text.rindex(person), text.rindex(place)
    spans = (
        Span(at_person, at_person + len(person), "PER"),
        Span(at_place, at_place + len(place), "LOC"),
    )
    return SpanExample(key, text, spans)


def sentences(prefix: str, people: list[str], places: list[str], n: int) -> list[SpanExample]:
    rng = random.Random(prefix)
    return [
        sentence(f"{prefix}{i}", rng.choice(TEMPLATES), rng.choice(people), rng.choice(places))
        for i in range(n)
    ]


# Held-out sentences name people and places never seen in training.
TRAIN = [
    *sentences("train", PEOPLE[:7], PLACES[:6], 40),
    sentence("long-train", TEMPLATES[0], "Bob", "Rome", prefix=FILLER),
]
HELD_OUT = sentences("held-out", PEOPLE[7:], PLACES[6:], 10)


@pytest.fixture(scope="module")
def trained() -> TextCheckpoint:
    checkpoint, report = train_tagger(TRAIN, LABELS, CONFIG, progress=False)
    assert (report.examples, report.epochs, report.device) == (len(TRAIN), 3, "cpu")
    assert report.windows > report.examples  # the long text takes several windows
    assert report.final_loss < 1.0
    assert checkpoint.labels == bio_tags(LABELS)
    assert entity_labels_of(checkpoint) == LABELS
    return checkpoint


def test_entity_metrics_count_only_exact_matches() -> None:
    true = [
        [Span(0, 5, "PER"), Span(10, 15, "LOC")],
        [Span(0, 3, "PER"), Span(4, 8, "LOC"), Span(9, 12, "LOC")],
    ]
    predicted = [
        [Span(0, 5, "PER", 0.9), Span(10, 14, "LOC")],  # right; cut short
        [Span(0, 3, "LOC"), Span(4, 8, "LOC"), Span(20, 22, "PER")],  # wrong type; right; spurious
    ]
    metrics = entity_metrics(true, predicted, LABELS)
    assert (metrics.n_examples, metrics.n_true, metrics.n_predicted) == (2, 5, 5)
    assert (metrics.precision, metrics.recall, metrics.f1) == pytest.approx((0.4, 0.4, 0.4))
    assert metrics.per_type["PER"] == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    )
    assert metrics.per_type["LOC"] == pytest.approx(
        {"precision": 1 / 3, "recall": 1 / 3, "f1": 1 / 3, "support": 3}
    )


def test_entity_metrics_score_zero_rather_than_nan() -> None:
    metrics = entity_metrics([[Span(0, 5, "PER")], []], [[], []], LABELS)
    assert (metrics.precision, metrics.recall, metrics.f1) == (0.0, 0.0, 0.0)
    assert metrics.per_type["LOC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    assert metrics.to_metadata()["per_type"]["PER"]["support"] == 1


def test_entity_metrics_reject_unknown_labels() -> None:
    with pytest.raises(UnknownLabelError, match="ORG"):
        entity_metrics([[Span(0, 5, "ORG")]], [[]], LABELS)


def test_entity_scores_plot() -> None:
    metrics = entity_metrics([[Span(0, 5, "PER")]], [[Span(0, 5, "PER")]], LABELS)
    image = plot_entity_scores(metrics)
    assert image.format == "PNG"
    assert image.width >= 400 and image.height >= 400


def whole_words(text: str, span: Span) -> bool:
    before = text[span.start - 1] if span.start > 0 else " "
    after = text[span.end] if span.end < len(text) else " "
    return not before.isalnum() and not after.isalnum()


def test_tagger_finds_unseen_names_and_places(trained: TextCheckpoint) -> None:
    metrics = evaluate_tagger(trained, HELD_OUT, progress=False)
    assert metrics.n_true == 20
    assert metrics.f1 > MIN_F1, metrics
    predictions = predict_spans(trained, [(e.key, e.text) for e in HELD_OUT], progress=False)
    assert [p.key for p in predictions] == [e.key for e in HELD_OUT]
    for example, prediction in zip(HELD_OUT, predictions, strict=True):
        assert all(whole_words(example.text, span) for span in prediction.spans), prediction
        assert all(span.score is not None and 0 < span.score <= 1 for span in prediction.spans)


def test_long_texts_are_tagged_past_the_first_window(trained: TextCheckpoint) -> None:
    example = sentence("long", TEMPLATES[1], "Jack", "Oslo", prefix=FILLER)
    tokenizer = AutoTokenizer.from_pretrained(model_path("minilm"))
    first_window = tokenizer(
        example.text, truncation=True, max_length=CONFIG.max_length, return_offsets_mapping=True
    )
    assert max(end for _, end in first_window["offset_mapping"]) < example.spans[0].start
    texts = [(example.key, example.text), ("empty", ""), ("blank", "  \n"), ("plain", FILLER)]
    long, empty, blank, plain = predict_spans(trained, texts, batch_size=2, progress=False)
    assert [(s.start, s.end, s.label) for s in long.spans] == [
        (s.start, s.end, s.label) for s in example.spans
    ]
    assert (empty.spans, empty.score) == ([], 1.0)
    assert (blank.spans, blank.score) == ([], 1.0)
    # No entity, confidently: "nothing here" scores high (measured: 0.90).
    assert plain.spans == [] and plain.score > 0.8


def test_predictions_carry_an_embedding_and_the_least_sure_words_margin(
    trained: TextCheckpoint,
) -> None:
    texts = [("plain", "the weather was nice"), ("odd", "I met xqzv in blorf"), ("empty", "")]
    plain, odd, empty = predict_spans(trained, texts, progress=False)
    for prediction in (plain, odd, empty):
        assert prediction.embedding.dtype == np.float16 and prediction.embedding.shape == (384,)
        assert 0 <= prediction.uncertainty <= 1
    # Measured: 0.24 for confident "O"s, 0.97 for made-up words where names would be.
    assert plain.uncertainty < 0.5 < 0.8 < odd.uncertainty
    assert empty.uncertainty == 0 and not empty.embedding.any()  # no words, nothing to fix


def test_word_features_are_first_subtoken_hidden_states(trained: TextCheckpoint) -> None:
    text = "Frank flew to Tokyo, happily"  # "happily" has several sub-tokens
    (words,) = word_features(trained, [("t", text)], progress=False)
    assert [text[start:end] for start, end in words.ranges] == [
        "Frank", "flew", "to", "Tokyo", ",", "happily"
    ]  # fmt: skip
    assert text_words(trained, text) == words.ranges
    model, tokenizer = load_checkpoint(trained)
    encoding = tokenizer(text, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**encoding, output_hidden_states=True).hidden_states[-1][0]
    word_ids = encoding.word_ids()
    first = [word_ids.index(word) for word in range(len(words.ranges))]
    assert words.features.dtype == np.float32
    assert words.features == pytest.approx(hidden[first].numpy(), abs=1e-4)
    (prediction,) = predict_spans(trained, [("t", text)], progress=False)
    mean = words.features.mean(axis=0)
    assert prediction.embedding.astype(np.float32) == pytest.approx(mean, abs=2e-3)


def test_predictions_reuse_the_model_loaded_once(trained: TextCheckpoint) -> None:
    fresh = replace(trained)  # a new checkpoint object, with nothing loaded yet
    texts = [("a", "I met Irene in Oslo"), ("b", "the weather was nice")]
    first = predict_spans(fresh, texts, progress=False)
    cached = fresh.inference
    # A model loaded again from the files would ignore this change to the cached one.
    loc = trained.labels.index("B-LOC")
    with torch.no_grad():
        cached.model.classifier.bias[loc] += 50.0
    again = predict_spans(fresh, texts, progress=False)
    assert fresh.inference is cached
    assert all(span.label == "LOC" for p in again for span in p.spans)
    assert [len(p.spans) for p in again] == [5, 4]  # every word its own location
    assert predict_spans(trained, texts, progress=False) == first


def test_ner_label_units_follow_the_annotation(trained: TextCheckpoint) -> None:
    ner = get_task_type("ner")
    first = sentence("0", "I met {person} in {place}", "Irene", "New York")
    second = SpanExample("2", "Oslo is far", (Span(0, 4, "LOC"),))
    examples = [
        Example(first.key, first.text, first.spans),
        Example("1", "", ()),
        Example(second.key, second.text, second.spans),
    ]
    units = ner.label_units(trained, examples)
    assert units.classes == ("O", "PER", "LOC")
    assert units.example.tolist() == [0] * 6 + [2] * 3  # the empty text has no words
    assert units.position.tolist() == [*range(6), *range(3)]
    given = [units.classes[g] for g in units.given]
    assert given == ["O", "O", "PER", "O", "LOC", "LOC", "LOC", "O", "O"]
    assert units.features.shape == (9, 384) and units.features.dtype == np.float32
    with pytest.raises(UnknownLabelError, match="'ORG'"):
        ner.label_units(trained, [Example("3", "Acme rocks", (Span(0, 4, "ORG"),))])
    empty = ner.label_units(trained, [examples[1]])
    assert (empty.features.shape, empty.given.size) == ((0, 384), 0)
    assert ner.label_units(trained, []).classes == units.classes


def test_ner_suggestions_retype_words(trained: TextCheckpoint) -> None:
    ner = get_task_type("ner")
    text = "I met Irene in New York today"
    spans = (Span(6, 11, "PER"), Span(15, 23, "LOC"))
    example = Example("0", text, spans)

    def suggested(suggestions: dict[int, str]) -> list[tuple[str, str]]:
        target = ner.suggest_target(trained, example, suggestions)
        return [(text[s.start : s.end], s.label) for s in target]

    assert ner.suggest_target(trained, example, {}) == spans
    assert suggested({5: "O"}) == [("Irene", "PER"), ("New", "LOC")]  # the span shrinks
    assert suggested({6: "PER"}) == [("Irene", "PER"), ("New York", "LOC"), ("today", "PER")]
    assert suggested({2: "LOC"}) == [("Irene", "LOC"), ("New York", "LOC")]
    with pytest.raises(UnknownLabelError, match="'ORG'"):
        ner.suggest_target(trained, example, {2: "ORG"})


def test_training_continues_from_the_previous_model(trained: TextCheckpoint) -> None:
    config = TextTrainConfig(max_length=32, stride=8, epochs=1, batch_size=2, learning_rate=1e-5)
    continued, report = train_tagger(HELD_OUT[:4], LABELS, config, init=trained, progress=False)
    assert report.examples == 4
    assert continued.labels == trained.labels
    assert continued.files != trained.files
    # A small, late step keeps what the previous model learnt.
    assert evaluate_tagger(continued, HELD_OUT[4:], progress=False).f1 > MIN_F1


def test_training_from_a_model_with_other_labels_is_refused(trained: TextCheckpoint) -> None:
    with pytest.raises(ConfigurationError, match="train from scratch"):
        train_tagger(TRAIN[:2], [*LABELS, "ORG"], CONFIG, init=trained, progress=False)


def test_nothing_to_train_on_is_an_error() -> None:
    with pytest.raises(LoopError, match="label some texts first"):
        train_tagger([SpanExample("empty", "", ())], LABELS, CONFIG, progress=False)
