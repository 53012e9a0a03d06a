"""Entity spans: checks, Label Studio results, and alignment to MiniLM's real tokenizer."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from transformers import AutoTokenizer

from annotation_loop.errors import UnknownLabelError
from annotation_loop.text.pretrained import model_path
from annotation_loop.text.spans import (
    IGNORED,
    Span,
    SpanError,
    bio_tags,
    relabel_words,
    result_from_spans,
    snap_to_words,
    spans_from_result,
    spans_from_word_tags,
    token_tags,
    validate_spans,
    word_ranges,
    word_tags,
    word_types,
)

LABELS = ["PER", "LOC"]
TAGS = bio_tags(LABELS)
TAG_INDEX = {tag: i for i, tag in enumerate(TAGS)}


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    return AutoTokenizer.from_pretrained(model_path("minilm"))


def span_at(text: str, covered: str, label: str) -> Span:
    start = text.index(covered)
    return Span(start, start + len(covered), label)


def tagged_tokens(tokenizer: Any, text: str, spans: list[Span]) -> list[tuple[str, str]]:
    """(token, tag) of every token the loss sees, of a text in one window."""
    encoding = tokenizer(text, return_offsets_mapping=True)
    tags = token_tags(encoding["offset_mapping"], encoding.word_ids(), spans, TAG_INDEX)
    tokens = tokenizer.convert_ids_to_tokens(encoding["input_ids"])
    return [(token, TAGS[tag]) for token, tag in zip(tokens, tags, strict=True) if tag != IGNORED]


def test_bio_tags() -> None:
    assert TAGS == ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]


def test_emoji_keep_their_code_point_offsets(tokenizer: Any) -> None:
    text = "I ❤️ Paris 😀 and Tokyo"
    spans = [span_at(text, "Paris", "LOC"), span_at(text, "Tokyo", "LOC")]
    assert tagged_tokens(tokenizer, text, spans) == [
        ("i", "O"),
        ("[UNK]", "O"),
        ("paris", "B-LOC"),
        ("[UNK]", "O"),
        ("and", "O"),
        ("tokyo", "B-LOC"),
    ]


def test_every_cjk_character_is_a_word(tokenizer: Any) -> None:
    text = "我爱北京 and Berlin"
    spans = [span_at(text, "北京", "LOC"), span_at(text, "Berlin", "LOC")]
    assert tagged_tokens(tokenizer, text, spans) == [
        ("我", "O"),
        ("[UNK]", "O"),
        ("北", "B-LOC"),
        ("京", "I-LOC"),
        ("and", "O"),
        ("berlin", "B-LOC"),
    ]


def test_whitespace_runs_inside_a_span(tokenizer: Any) -> None:
    text = "in New   York today"
    spans = [span_at(text, "New   York", "LOC")]
    assert tagged_tokens(tokenizer, text, spans) == [
        ("in", "O"),
        ("new", "B-LOC"),
        ("york", "I-LOC"),
        ("today", "O"),
    ]


def test_only_the_first_sub_token_of_a_word_is_tagged(tokenizer: Any) -> None:
    text = "Zyxwvutopolis met Bob"
    assert len(tokenizer.tokenize("Zyxwvutopolis")) > 2
    spans = [span_at(text, "Zyxwvutopolis", "PER"), span_at(text, "Bob", "PER")]
    assert tagged_tokens(tokenizer, text, spans) == [
        ("z", "B-PER"),
        ("met", "O"),
        ("bob", "B-PER"),
    ]


def test_a_span_cutting_a_word_takes_the_whole_word(tokenizer: Any) -> None:
    text = "Alice met Bob"
    # "ice me": from inside "Alice" to inside "met".
    assert tagged_tokens(tokenizer, text, [Span(2, 8, "PER")]) == [
        ("alice", "B-PER"),
        ("met", "I-PER"),
        ("bob", "O"),
    ]


def test_overflow_windows_continue_an_entity_across_their_boundary(tokenizer: Any) -> None:
    text = "a b c d e Jean Pierre Paul Jacques Zyxwvutopolis f g h i j k"
    spans = [span_at(text, "Jean Pierre Paul Jacques Zyxwvutopolis", "PER")]
    encoding = tokenizer(
        text,
        truncation=True,
        max_length=8,
        stride=2,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    windows = [
        (encoding["offset_mapping"][i], encoding.word_ids(i))
        for i in range(len(encoding["input_ids"]))
    ]
    words = word_ranges(windows)
    whole = tokenizer(text, return_offsets_mapping=True)
    assert words == word_ranges([(whole["offset_mapping"], whole.word_ids())])
    expected = dict(enumerate(word_tags([words[w] for w in sorted(words)], spans)))
    assert [expected[w] for w in sorted(words)][5:11] == [
        "B-PER",
        "I-PER",
        "I-PER",
        "I-PER",
        "I-PER",
        "O",
    ]
    seen_in_window: dict[int, list[str]] = {}
    window_starts = []
    for index, (offsets, word_ids) in enumerate(windows):
        tags = token_tags(offsets, word_ids, spans, TAG_INDEX, words)
        tokens = tokenizer.convert_ids_to_tokens(encoding["input_ids"][index])
        window_starts.append((tokens[1], TAGS[tags[1]] if tags[1] != IGNORED else None))
        for tag, word in zip(tags, word_ids, strict=True):
            if tag != IGNORED:
                assert word is not None
                seen_in_window.setdefault(word, []).append(TAGS[tag])
    # Every word is trained on in some window, always with its tag in the whole text.
    assert sorted(seen_in_window) == sorted(words)
    assert all(set(tags) == {expected[word]} for word, tags in seen_in_window.items())
    # A window starting inside the entity continues it; one starting inside a word skips it.
    assert window_starts == [
        ("a", "O"),
        ("e", "O"),
        ("jacques", "I-PER"),
        ("##vu", None),
        ("g", "O"),
    ]


def test_spans_are_sorted_and_checked() -> None:
    text = "Alice met Bob in Paris"
    spans = [span_at(text, "Paris", "LOC"), span_at(text, "Alice", "PER")]
    assert validate_spans(text, spans, LABELS) == sorted(spans)


@pytest.mark.parametrize(
    "span",
    [Span(-1, 3, "PER"), Span(20, 23, "LOC"), Span(5, 5, "PER"), Span(6, 4, "PER")],
)
def test_out_of_range_and_empty_spans_are_rejected(span: Span) -> None:
    with pytest.raises(SpanError, match=r"task 7.*fix or delete it"):
        validate_spans("Alice met Bob in Paris", [span], LABELS, where="task 7")


def test_whitespace_only_spans_are_rejected() -> None:
    with pytest.raises(SpanError, match="covers only whitespace"):
        validate_spans("Alice   Bob", [Span(6, 8, "PER")], LABELS)


def test_overlapping_spans_are_rejected_naming_both() -> None:
    text = "Alice met Bob in Paris"
    spans = [Span(0, 5, "PER"), Span(3, 9, "PER")]
    with pytest.raises(SpanError) as error:
        validate_spans(text, spans, LABELS, where="task 12")
    message = str(error.value)
    assert "'Alice'" in message and "'ce met'" in message and "task 12" in message
    assert "\n" not in message


def test_unknown_label_is_rejected() -> None:
    with pytest.raises(UnknownLabelError, match="fix the annotation or add the label"):
        validate_spans("Alice", [Span(0, 5, "ORG")], LABELS, where="task 3")


def region(start: int, end: int, text: str | None, label: str = "LOC") -> dict[str, Any]:
    value: dict[str, Any] = {"start": start, "end": end, "labels": [label]}
    if text is not None:
        value["text"] = text
    return {"id": "x1", "from_name": "label", "to_name": "text", "type": "labels", "value": value}


def test_result_regions_of_other_controls_are_ignored() -> None:
    text = "Alice in Paris"
    result = [
        region(9, 14, "Paris"),
        {**region(0, 5, "Alice", "PER"), "from_name": "other"},
        {"id": "c", "from_name": "sentiment", "type": "choices", "value": {"choices": ["x"]}},
    ]
    assert spans_from_result(result, text, LABELS) == [Span(9, 14, "LOC")]


def test_result_text_mismatch_is_rejected() -> None:
    with pytest.raises(SpanError, match=r"says 'Paris' but the text there is 'Berli'"):
        spans_from_result([region(0, 5, "Paris")], "Berlin is big", LABELS, where="task 4")


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        ({"start": "/p[1]/text()[1]", "end": "/p[1]/text()[1]", "labels": ["LOC"]}, "<HyperText>"),
        ({"start": 9, "end": 14, "labels": ["LOC", "PER"]}, "one label"),
        ({"start": 9, "end": 14, "labels": []}, "one label"),
    ],
)
def test_unusable_regions_are_rejected(value: dict[str, Any], hint: str) -> None:
    result = [{**region(0, 0, None), "value": value}]
    with pytest.raises(SpanError, match=hint):
        spans_from_result(result, "Alice in Paris", LABELS)


def test_utf16_offsets_of_older_frontends_are_converted() -> None:
    text = "😀😀 Paris"
    # UTF-16 counts each emoji as two code units: "Paris" is at [5, 10), not [3, 8).
    assert spans_from_result([region(5, 10, "Paris")], text, LABELS) == [Span(3, 8, "LOC")]


def test_offsets_inside_a_surrogate_pair_are_not_converted() -> None:
    # UTF-16 offset 1 is the second half of the emoji.
    with pytest.raises(SpanError, match="says '😀a'"):
        spans_from_result([region(1, 3, "😀a")], "😀ab", LABELS)


def test_spans_survive_a_result_round_trip() -> None:
    text = "Alice 😀 met Bob in Paris"
    spans = [
        span_at(text, "Alice", "PER"),
        replace(span_at(text, "Bob", "PER"), score=0.25),
        span_at(text, "Paris", "LOC"),
    ]
    result = result_from_spans(spans, text, from_name="ner", to_name="body")
    assert [r["value"]["text"] for r in result] == ["Alice", "Bob", "Paris"]
    assert [r.get("score") for r in result] == [None, 0.25, None]
    assert len({r["id"] for r in result}) == 3
    assert result_from_spans(spans, text, "ner", "body") == result  # stable ids
    assert spans_from_result(result, text, LABELS, from_name="ner") == spans


def test_results_survive_a_span_round_trip() -> None:
    text = "Alice met Bob"
    result = result_from_spans([Span(0, 5, "PER", 0.9), Span(10, 13, "PER")], text)
    assert result_from_spans(spans_from_result(result, text, LABELS), text) == result


def test_word_tags_become_spans_as_seqeval_reads_them() -> None:
    text = "Jean Paul in New York and Rome"
    words = [(0, 4), (5, 9), (10, 12), (13, 16), (17, 21), (22, 25), (26, 30)]
    tags = ["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "O", "B-LOC"]
    probabilities = [0.9, 0.7, 0.99, 0.6, 0.8, 0.99, 0.5]
    spans = spans_from_word_tags(
        text,
        [(s, e, t, p) for (s, e), t, p in zip(words, tags, probabilities, strict=True)],
    )
    assert [(s.start, s.end, s.label) for s in spans] == [
        (0, 9, "PER"),
        (13, 21, "LOC"),
        (26, 30, "LOC"),
    ]
    assert [s.score for s in spans] == pytest.approx([0.8, 0.7, 0.5])  # the words' mean


def test_a_new_type_or_b_tag_starts_a_new_entity() -> None:
    words = [(0, 1, "B-PER", 1.0), (2, 3, "I-LOC", 1.0), (4, 5, "B-LOC", 1.0)]
    assert [(s.start, s.end, s.label) for s in spans_from_word_tags("a b c", words)] == [
        (0, 1, "PER"),
        (2, 3, "LOC"),
        (4, 5, "LOC"),
    ]


def test_snapping_widens_spans_to_whole_words() -> None:
    text = "Alice met Bob "
    words = [(0, 5), (6, 9), (10, 13)]
    assert snap_to_words(text, [Span(1, 3, "PER"), Span(10, 14, "PER")], words) == [
        Span(0, 5, "PER"),
        Span(10, 13, "PER"),
    ]


def whitespace_words(text: str) -> list[tuple[int, int]]:
    words, start = [], 0
    for word in text.split(" "):
        words.append((start, start + len(word)))
        start += len(word) + 1
    return words


RELABEL_TEXT = "Anna Maria Lopez flew to New York"
RELABEL_WORDS = whitespace_words(RELABEL_TEXT)  # 0 Anna ... 5 New, 6 York
PERSON = span_at(RELABEL_TEXT, "Anna Maria Lopez", "PER")
CITY = span_at(RELABEL_TEXT, "New York", "LOC")


def relabelled(spans: list[Span], types: dict[int, str]) -> list[tuple[str, str]]:
    result = relabel_words(RELABEL_TEXT, spans, RELABEL_WORDS, types)
    return [(RELABEL_TEXT[s.start : s.end], s.label) for s in result]


def test_word_types_drop_the_bio_prefix() -> None:
    assert word_types(RELABEL_WORDS, [PERSON, CITY]) == ["PER"] * 3 + ["O"] * 2 + ["LOC"] * 2


@pytest.mark.parametrize(
    ("types", "expected"),
    [
        ({}, [("Anna Maria Lopez", "PER"), ("New York", "LOC")]),
        ({6: "O"}, [("Anna Maria Lopez", "PER"), ("New", "LOC")]),  # shrinks
        ({1: "O"}, [("Anna", "PER"), ("Lopez", "PER"), ("New York", "LOC")]),  # splits
        ({1: "LOC"}, [("Anna", "PER"), ("Maria", "LOC"), ("Lopez", "PER"), ("New York", "LOC")]),
        ({4: "LOC"}, [("Anna Maria Lopez", "PER"), ("to New York", "LOC")]),  # joins
        ({3: "PER"}, [("Anna Maria Lopez flew", "PER"), ("New York", "LOC")]),
        ({3: "LOC", 4: "LOC"}, [("Anna Maria Lopez", "PER"), ("flew to New York", "LOC")]),
        ({5: "PER", 6: "PER"}, [("Anna Maria Lopez", "PER"), ("New York", "PER")]),
        ({0: "O", 1: "O", 2: "O"}, [("New York", "LOC")]),
        ({1: "PER"}, [("Anna Maria Lopez", "PER"), ("New York", "LOC")]),  # already so
    ],
)
def test_relabelled_words_leave_and_join_spans(
    types: dict[int, str], expected: list[tuple[str, str]]
) -> None:
    assert relabelled([PERSON, CITY], types) == expected


def test_spans_away_from_relabelled_words_keep_their_exact_ranges() -> None:
    cut = Span(PERSON.start, PERSON.end - 2, "PER", 0.7)  # "Anna Maria Lop": cuts a word
    result = relabel_words(RELABEL_TEXT, [cut, CITY], RELABEL_WORDS, {6: "O"})
    assert result == [cut, Span(CITY.start, CITY.start + 3, "LOC")]
    # A span that takes a trailing space is rebuilt from whole words when a word joins it.
    spaced = Span(CITY.start - 3, CITY.start, "LOC")  # "to "
    assert relabel_words(RELABEL_TEXT, [spaced], RELABEL_WORDS, {5: "LOC"}) == [
        Span(spaced.start, CITY.start + 3, "LOC")
    ]


def test_relabelling_a_word_the_text_lacks_is_an_error() -> None:
    with pytest.raises(ValueError, match="Word 7 is not one of the text's 7 words"):
        relabel_words(RELABEL_TEXT, [PERSON], RELABEL_WORDS, {7: "O"})
