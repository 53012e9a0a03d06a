"""Entity metrics from seqeval: the same numbers as the hand-written set counting they
replaced, on a realistic tagger's output (cut-short, mistyped, missed and spurious spans)."""

from __future__ import annotations

import random

import pytest

from annotation_loop.text.entity_metrics import entity_metrics
from annotation_loop.text.spans import Span

LABELS = ["PER", "LOC", "ORG", "MISC"]


def tagged_texts(seed: int = 0, n: int = 40) -> tuple[list[list[Span]], list[list[Span]]]:
    """(true, predicted) spans of `n` texts: MISC is never annotated, and each true entity is
    found (60%), cut short by a character (10%), given another type (10%) or missed; a
    third of the texts get a spurious entity after the last one."""
    rng = random.Random(seed)
    true: list[list[Span]] = []
    predicted: list[list[Span]] = []
    for _ in range(n):
        position, spans, guesses = 0, [], []
        for _ in range(rng.randint(0, 5)):
            start = position + rng.randint(1, 10)
            end = position = start + rng.randint(1, 12)
            label = rng.choice(LABELS[:3])
            spans.append(Span(start, end, label))
            outcome = rng.random()
            if outcome < 0.6:
                guesses.append(Span(start, end, label, score=rng.random()))
            elif outcome < 0.7:
                guesses.append(Span(start, end - 1 if end - start > 1 else end + 1, label))
            elif outcome < 0.8:
                guesses.append(Span(start, end, rng.choice([x for x in LABELS if x != label])))
        if rng.random() < 0.3:
            start = position + rng.randint(1, 10)
            guesses.append(Span(start, start + rng.randint(1, 5), rng.choice(LABELS)))
        true.append(spans)
        predicted.append(guesses)
    return true, predicted


def test_scores_match_those_pinned_before_seqeval() -> None:
    # Computed by the hand-written implementation this module had before seqeval.
    metrics = entity_metrics(*tagged_texts(), LABELS)
    assert (metrics.n_examples, metrics.n_true, metrics.n_predicted) == (40, 111, 96)
    assert (metrics.precision, metrics.recall, metrics.f1) == pytest.approx(
        (63 / 96, 63 / 111, 14 / 23), rel=1e-12
    )
    assert metrics.per_type == {
        "PER": pytest.approx({"precision": 11 / 14, "recall": 11 / 19, "f1": 2 / 3, "support": 38}),
        "LOC": pytest.approx({"precision": 16 / 29, "recall": 16 / 35, "f1": 1 / 2, "support": 35}),
        "ORG": pytest.approx(
            {"precision": 25 / 34, "recall": 25 / 38, "f1": 25 / 36, "support": 38}
        ),
        # Predicted (mistyped or spurious) but never true: seqeval, like the old counting,
        # scores it 0 with no support.
        "MISC": {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0},
    }


def test_adjacent_entities_of_one_type_stay_two() -> None:
    true = [[Span(0, 5, "PER"), Span(5, 9, "PER")]]
    merged = entity_metrics(true, [[Span(0, 9, "PER")]], LABELS)
    assert (merged.n_true, merged.n_predicted, merged.recall) == (2, 1, 0.0)
    assert entity_metrics(true, true, LABELS).f1 == 1.0


def test_a_span_is_matched_only_with_its_exact_characters() -> None:
    # A prediction inside a true span, or one starting where it ends, matches nothing.
    true = [[Span(2, 10, "LOC")]]
    predicted = [[Span(4, 6, "LOC"), Span(10, 12, "LOC")]]
    metrics = entity_metrics(true, predicted, LABELS)
    assert (metrics.precision, metrics.recall) == (0.0, 0.0)
    assert metrics.per_type["LOC"]["support"] == 1


def test_a_span_given_twice_counts_once() -> None:
    twice = [[Span(0, 5, "PER"), Span(0, 5, "PER", score=0.7)]]
    metrics = entity_metrics(twice, twice, LABELS)
    assert (metrics.n_true, metrics.n_predicted, metrics.f1) == (1, 1, 1.0)


def test_labels_differing_only_by_dashes_stay_apart() -> None:
    labels = ["X", "X-", "-X"]
    metrics = entity_metrics([[Span(0, 2, "X")]], [[Span(0, 2, "X-")]], labels)
    assert metrics.f1 == 0.0
    assert metrics.per_type["X"]["recall"] == 0.0 and metrics.per_type["X-"]["precision"] == 0.0


def test_no_texts_score_zero() -> None:
    metrics = entity_metrics([], [], LABELS)
    assert (metrics.precision, metrics.recall, metrics.f1, metrics.n_examples) == (0, 0, 0, 0)
    assert metrics.per_type["PER"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


@pytest.mark.parametrize(
    ("spans", "message"),
    [
        ([Span(0, 5, "PER"), Span(3, 8, "LOC")], "overlaps another span"),
        ([Span(4, 4, "PER")], "not a non-empty character range"),
    ],
)
def test_spans_a_tagger_cannot_produce_are_refused(spans: list[Span], message: str) -> None:
    # IOB2 tags hold one entity per character; the tagger's spans never overlap.
    with pytest.raises(ValueError, match=message):
        entity_metrics([spans], [[]], LABELS)
    with pytest.raises(ValueError, match=message):
        entity_metrics([[]], [spans], LABELS)
