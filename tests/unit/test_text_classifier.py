import itertools
import random
from dataclasses import replace

import numpy as np
import pytest
import torch

from annotation_loop.errors import ConfigurationError, LoopError, UnknownLabelError
from annotation_loop.task_types import Example, get_task_type
from annotation_loop.text.checkpoint import TextCheckpoint
from annotation_loop.text.classifier import (
    evaluate_text_classifier,
    predict_texts,
    train_text_classifier,
)
from annotation_loop.text.examples import TextExample
from annotation_loop.text.pretrained import TextTrainConfig, load_checkpoint

LABELS = ["fresh", "rotten"]
POSITIVE = ["great", "wonderful", "superb", "brilliant", "delightful", "excellent"]
NEGATIVE = ["awful", "boring", "terrible", "dreadful", "dull", "horrible"]
SUBJECTS = ["the film", "this movie", "the story", "the acting", "the plot"]
# Words both classes share, so the model learns they say nothing about the label.
MIDDLES = ["", "with its actors and a scene in a city", "about people who talk about their day"]
CONFIG = TextTrainConfig(max_length=32, stride=8, epochs=4, batch_size=16, learning_rate=2e-4)
NEUTRAL = "the film has a plot with actors and a scene in a city where people talk about their day"


def _sentences(words: list[str], label: str) -> list[TextExample]:
    return [
        TextExample(f"{label}-{n}", " ".join(f"{subject} {middle} was {a} and {b}".split()), label)
        for n, (subject, middle, (a, b)) in enumerate(
            itertools.product(SUBJECTS, MIDDLES, itertools.permutations(words, 2))
        )
    ]


def _training_set() -> list[TextExample]:
    # The first four words of each class are trained on; the last two are held out.
    rng = random.Random(0)
    return rng.sample(_sentences(POSITIVE[:4], "fresh"), 30) + rng.sample(
        _sentences(NEGATIVE[:4], "rotten"), 30
    )


def _held_out() -> list[TextExample]:
    return [
        TextExample(f"held-{word}", f"a {word} movie, truly {word}", label)
        for words, label in ((POSITIVE, "fresh"), (NEGATIVE, "rotten"))
        for word in words
    ]


@pytest.fixture(scope="module")
def checkpoint() -> TextCheckpoint:
    trained, report = train_text_classifier(_training_set(), LABELS, CONFIG, progress=False)
    assert (report.examples, report.windows, report.epochs) == (60, 60, 4)
    assert report.final_loss < 0.5
    return trained


def test_learns_sentiment_words(checkpoint: TextCheckpoint) -> None:
    assert checkpoint.labels == LABELS
    assert checkpoint.head == "sequence_classification"
    metrics = evaluate_text_classifier(checkpoint, _held_out(), progress=False)
    assert metrics.n_examples == 12
    assert metrics.accuracy >= 0.9


def test_long_text_is_classified_by_its_end(checkpoint: TextCheckpoint) -> None:
    neutral = f"{NEUTRAL} {NEUTRAL}."  # about 40 tokens, more than the first window holds
    texts = [
        ("ends-fresh", neutral + " it was wonderful, great and superb." * 5),
        ("ends-rotten", neutral + " it was awful, boring and terrible." * 5),
    ]
    _, tokenizer = load_checkpoint(checkpoint)
    windows = [
        tokenizer(text, truncation=True, max_length=32, stride=8, return_overflowing_tokens=True)
        for _, text in texts
    ]
    assert all(len(w["input_ids"]) > 3 for w in windows)
    # The texts agree on their whole first window: a classifier that truncated them to it
    # would give both the same label and score, so one of them would be wrong.
    assert windows[0]["input_ids"][0] == windows[1]["input_ids"][0]
    fresh, rotten = predict_texts(checkpoint, texts, progress=False)
    assert (fresh.key, fresh.label) == ("ends-fresh", "fresh")
    assert (rotten.key, rotten.label) == ("ends-rotten", "rotten")


def test_predictions_in_input_order_with_probabilities(checkpoint: TextCheckpoint) -> None:
    texts = [
        ("medium", "the story was excellent and delightful, the acting too"),
        ("long", " ".join([NEUTRAL] * 4) + " and it was dreadful"),
        ("empty", "  \n"),
        ("short", "dull"),
        ("longest", " ".join([NEUTRAL] * 6) + " and it was brilliant"),
    ]
    together = predict_texts(checkpoint, texts, batch_size=2, progress=False)
    assert [p.key for p in together] == ["medium", "long", "short", "longest"]
    assert all(0 < p.score <= 1 for p in together)
    assert all(p.score >= 0.5 for p in together)  # the top one of two labels
    # Sorting windows by length must not mix up whose prediction is whose.
    alone = [p for text in texts for p in predict_texts(checkpoint, [text], progress=False)]
    assert [(p.key, p.label) for p in alone] == [(p.key, p.label) for p in together]
    assert [p.score for p in alone] == pytest.approx([p.score for p in together], abs=1e-4)
    for one, batched in zip(alone, together, strict=True):
        assert one.embedding.dtype == np.float16 and one.embedding.shape == (384,)
        assert one.embedding == pytest.approx(batched.embedding, abs=2e-3)
        # Two labels: the margin between them is |2p - 1|.
        assert one.uncertainty == pytest.approx(2 * (1 - one.score), abs=1e-4)


def test_uncertainty_is_low_for_a_clear_text_and_high_for_a_mixed_one(
    checkpoint: TextCheckpoint,
) -> None:
    clear, mixed = predict_texts(
        checkpoint,
        [("clear", "the film was great and wonderful"), ("mixed", "great awful")],
        progress=False,
    )
    # Measured: 0.09 and 0.82.
    assert clear.uncertainty < 0.3 < 0.5 < mixed.uncertainty


def test_embedding_is_the_mean_last_hidden_state_over_the_tokens(
    checkpoint: TextCheckpoint,
) -> None:
    text = "the acting was dreadful"
    (prediction,) = predict_texts(checkpoint, [("t", text)], progress=False)
    model, tokenizer = load_checkpoint(checkpoint)
    with torch.inference_mode():
        hidden = model(**tokenizer(text, return_tensors="pt"), output_hidden_states=True)
    expected = hidden.hidden_states[-1][0].mean(dim=0).numpy()
    assert prediction.embedding.astype(np.float32) == pytest.approx(expected, abs=2e-3)


def test_predictions_reuse_the_model_loaded_once(checkpoint: TextCheckpoint) -> None:
    fresh = replace(checkpoint)  # a new checkpoint object, with nothing loaded yet
    texts = [("a", "the story was superb"), ("b", "the plot was dull")]
    assert [p.label for p in predict_texts(fresh, texts, progress=False)] == LABELS
    cached = fresh.inference
    # A model loaded again from the files would ignore this change to the cached one.
    with torch.no_grad():
        cached.model.classifier.bias.copy_(torch.tensor([0.0, 50.0]))
    again = predict_texts(fresh, texts, progress=False)
    assert fresh.inference is cached
    assert [p.label for p in again] == ["rotten", "rotten"]
    assert [p.label for p in predict_texts(checkpoint, texts, progress=False)] == LABELS


def test_text_label_units_and_suggestions(checkpoint: TextCheckpoint) -> None:
    text = get_task_type("text")
    examples = [
        Example("a", "the story was superb", "fresh"),
        Example("b", "   ", "rotten"),
        Example("c", "the plot was dull", "fresh"),  # a wrong label is still its label
    ]
    units = text.label_units(checkpoint, examples)
    assert units.classes == ("fresh", "rotten")
    assert units.example.tolist() == [0, 2]  # the empty text has no unit
    assert units.given.tolist() == [0, 0]
    assert units.position.tolist() == [0, 0]
    assert units.features.shape == (2, 384) and units.features.dtype == np.float32
    predictions, skipped = text.predict(checkpoint, [(e.key, e.input) for e in examples], 8)
    assert skipped == ["b"]
    assert np.array_equal(units.features, np.stack([p.embedding for p in predictions]))
    assert [p.uncertainty for p in predictions] == [
        pytest.approx(2 * (1 - p.score), abs=1e-4) for p in predictions
    ]
    assert text.suggest_target(checkpoint, examples[2], {0: "rotten"}) == "rotten"
    with pytest.raises(UnknownLabelError, match="'meh'"):
        text.label_units(checkpoint, [Example("d", "so so", "meh")])


def test_continues_from_a_checkpoint_and_splits_long_texts(checkpoint: TextCheckpoint) -> None:
    examples = [
        TextExample("long", " ".join([NEUTRAL] * 4) + " and it was superb", "fresh"),
        TextExample("short", "the plot was boring", "rotten"),
    ]
    config = TextTrainConfig(max_length=32, stride=8, epochs=1, batch_size=2, learning_rate=1e-5)
    continued, report = train_text_classifier(
        examples, LABELS, config, init=checkpoint, progress=False
    )
    assert report.examples == 2
    assert report.windows >= 4 + 1  # the long text's windows, all trained on
    assert continued.labels == LABELS
    held_out = evaluate_text_classifier(continued, _held_out(), progress=False)
    assert held_out.accuracy >= 0.9  # a small step from a good model stays good


def test_label_list_must_match_the_checkpoint(checkpoint: TextCheckpoint) -> None:
    example = [TextExample("a", "great", "fresh")]
    with pytest.raises(ConfigurationError, match="train from scratch"):
        train_text_classifier(example, ["fresh", "rotten", "meh"], CONFIG, init=checkpoint)
    with pytest.raises(ConfigurationError, match="train from scratch"):
        train_text_classifier(example, ["rotten", "fresh"], CONFIG, init=checkpoint)


def test_unknown_label_names_the_text() -> None:
    examples = [TextExample("batch_1/r.jsonl#7", "so so", "meh")]
    with pytest.raises(UnknownLabelError, match=r"batch_1/r\.jsonl#7 is labelled 'meh'"):
        train_text_classifier(examples, LABELS, CONFIG)


def test_needs_two_labels_and_some_examples() -> None:
    with pytest.raises(ConfigurationError, match="at least two distinct labels"):
        train_text_classifier([], ["fresh"], CONFIG)
    with pytest.raises(ConfigurationError, match="at least two distinct labels"):
        train_text_classifier([], ["fresh", "fresh"], CONFIG)
    with pytest.raises(LoopError, match="label some texts first"):
        train_text_classifier([], LABELS, CONFIG)
