"""Entity spans: character ranges of a text, as Label Studio stores them.

Also their checks, their Label Studio form, and their alignment to a tokenizer's words:
BIO tags to train a token classifier on, and spans back from the tags it predicts.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from statistics import fmean
from typing import Any

from annotation_loop.errors import LoopError, UnknownLabelError


@dataclass(frozen=True, order=True)
class Span:
    start: int  # code-point offset into the text, inclusive
    end: int  # exclusive
    label: str
    score: float | None = None  # the model's confidence, for predicted spans


class SpanError(LoopError):
    """A span in an annotation that cannot be used."""


# Label Studio's own region type for `<Labels>` over a `<Text>`.
LABELS_REGION = "labels"
# The label transformers' losses ignore: special tokens and all but a word's first sub-token.
IGNORED = -100
OUTSIDE = "O"

# (start, end): a character range of a text, end exclusive.
CharRange = tuple[int, int]


def bio_tags(entity_labels: Sequence[str]) -> list[str]:
    """The token classifier's outputs: "O", then "B-<label>" and "I-<label>" for every label."""
    return [OUTSIDE, *(f"{prefix}-{label}" for label in entity_labels for prefix in "BI")]


def _position(span: Span) -> tuple[int, int, str]:
    # Not the dataclass order: it would compare a None score with a float.
    return span.start, span.end, span.label


def _in(where: str) -> str:
    return f" in {where}" if where else ""


def _describe(span: Span, text: str) -> str:
    return f"{span.label} [{span.start}, {span.end}) {text[span.start : span.end]!r}"


def validate_spans(
    text: str, spans: Sequence[Span], labels: Sequence[str], where: str = ""
) -> list[Span]:
    """`spans` sorted by position, once each is checked to be usable on `text`.

    Raises `SpanError` for a span out of `text`, empty, covering only whitespace, or
    overlapping another; `UnknownLabelError` for a label not in `labels`. `where` (e.g.
    "task 12") says in the message which annotation to fix.
    """
    ordered = sorted(spans, key=_position)
    for span in ordered:
        if not 0 <= span.start < span.end <= len(text):
            raise SpanError(
                f"Span {span.label} [{span.start}, {span.end}){_in(where)} is not a non-empty "
                f"range of the {len(text)}-character text: fix or delete it in Label Studio"
            )
        if not text[span.start : span.end].strip():
            raise SpanError(
                f"Span {_describe(span, text)}{_in(where)} covers only whitespace: "
                "delete it in Label Studio"
            )
        if span.label not in labels:
            raise UnknownLabelError(
                f"Span {_describe(span, text)}{_in(where)} is labelled {span.label!r}, which is "
                f"not one of {list(labels)}: fix the annotation or add the label"
            )
    for before, after in pairwise(ordered):
        if after.start < before.end:
            raise SpanError(
                f"Spans {_describe(before, text)} and {_describe(after, text)}{_in(where)} "
                "overlap: fix the annotation in Label Studio so that no two spans overlap"
            )
    return ordered


def _code_point_index(text: str, utf16_offset: int) -> int | None:
    """The index in `text` of UTF-16 code unit `utf16_offset`; None inside a surrogate pair
    or past the end."""
    units = 0
    for index, char in enumerate(text):
        if units >= utf16_offset:
            return index if units == utf16_offset else None
        units += 2 if ord(char) > 0xFFFF else 1
    return len(text) if units == utf16_offset else None


def _code_point_range(start: int, end: int, said: str, text: str, where: str) -> CharRange:
    """(start, end) as code points, where the region's own `said` text says where it is."""
    if text[start:end] == said:
        return start, end
    # Older Label Studio frontends counted in UTF-16 code units, where an emoji counts twice.
    converted_start, converted_end = _code_point_index(text, start), _code_point_index(text, end)
    if (
        converted_start is not None
        and converted_end is not None
        and text[converted_start:converted_end] == said
    ):
        return converted_start, converted_end
    raise SpanError(
        f"Span [{start}, {end}){_in(where)} says {said!r} but the text there is "
        f"{text[start:end]!r}: the text changed after it was annotated; annotate it again"
    )


def _region_span(region: Mapping[str, Any], text: str, where: str) -> Span:
    value = region.get("value", {})
    start, end, labels = value.get("start"), value.get("end"), value.get("labels", [])
    if not (isinstance(start, int) and isinstance(end, int)):
        raise SpanError(
            f"Region {region.get('id')!r}{_in(where)} has offsets {start!r}, {end!r}, not "
            "character positions: label a <Text> object, not <HyperText>"
        )
    if len(labels) != 1:
        raise SpanError(
            f"Region [{start}, {end}){_in(where)} has labels {labels}, not exactly one: "
            'give each span one label (<Labels choice="single">)'
        )
    if "text" in value:
        start, end = _code_point_range(start, end, value["text"], text, where)
    score = region.get("score")
    return Span(start, end, labels[0], None if score is None else float(score))


def spans_from_result(
    result: Sequence[Mapping[str, Any]],
    text: str,
    labels: Sequence[str],
    from_name: str = "label",
    where: str = "",
) -> list[Span]:
    """The validated spans of the `from_name` `<Labels>` regions of a Label Studio result.

    Offsets are code points; a region whose `value.text` only matches the text when its
    offsets are read as UTF-16 code units (older frontends) is converted.
    """
    spans = [
        _region_span(region, text, where)
        for region in result
        if region.get("type") == LABELS_REGION and region.get("from_name") == from_name
    ]
    return validate_spans(text, spans, labels, where)


def _region_id(span: Span) -> str:
    # Stable, so that writing the same prediction twice gives the same regions.
    return hashlib.sha1(f"{span.start}:{span.end}:{span.label}".encode()).hexdigest()[:10]


def result_from_spans(
    spans: Sequence[Span], text: str, from_name: str = "label", to_name: str = "text"
) -> list[dict[str, Any]]:
    """Label Studio result regions for `spans` of `text`; `spans_from_result` reads them back."""
    regions = []
    for span in spans:
        region: dict[str, Any] = {
            "id": _region_id(span),
            "from_name": from_name,
            "to_name": to_name,
            "type": LABELS_REGION,
            "value": {
                "start": span.start,
                "end": span.end,
                "text": text[span.start : span.end],
                "labels": [span.label],
            },
        }
        if span.score is not None:
            region["score"] = span.score
        regions.append(region)
    return regions


def word_ranges(
    windows: Iterable[tuple[Sequence[CharRange], Sequence[int | None]]],
) -> dict[int, CharRange]:
    """Word id -> the word's character range in the whole text, from the (offsets, word ids)
    of every tokenizer window of that text.

    A window may start or end inside a word, so one window alone can see part of it.
    """
    words: dict[int, CharRange] = {}
    for offsets, word_ids in windows:
        for (start, end), word in zip(offsets, word_ids, strict=True):
            if word is None or start == end:
                continue
            known = words.get(word)
            words[word] = (
                (start, end) if known is None else (min(known[0], start), max(known[1], end))
            )
    return words


def first_subtokens(
    offsets: Sequence[CharRange],
    word_ids: Sequence[int | None],
    words: Mapping[int, CharRange] | None = None,
) -> dict[int, int]:
    """Word id -> position in this window of the word's first sub-token, for the words whose
    first sub-token is in this window.

    `words` are the word ranges in the whole text (`word_ranges` of all its windows); without
    them, the window is taken to hold the start of every word it touches.
    """
    starts = words if words is not None else word_ranges([(offsets, word_ids)])
    first: dict[int, int] = {}
    for position, ((start, end), word) in enumerate(zip(offsets, word_ids, strict=True)):
        if word is not None and start != end and word not in first and start == starts[word][0]:
            first[word] = position
    return first


def word_tags(words: Sequence[CharRange], spans: Sequence[Span]) -> list[str]:
    """The BIO tag of every word (in text order) of a text with these non-overlapping spans.

    A word belongs to the first span its characters overlap, so a span cutting a word takes
    the whole word. It is tagged B-x when no character of span x lies before it, I-x when the
    span started earlier: a window starting inside an entity continues it.
    """
    ordered = sorted(spans, key=_position)
    ends = [span.end for span in ordered]
    tags = []
    for start, end in words:
        # The first span ending after the word starts; it overlaps the word if it starts
        # before the word ends.
        index = bisect.bisect_right(ends, start)
        if index < len(ordered) and ordered[index].start < end:
            span = ordered[index]
            tags.append(f"{'B' if span.start >= start else 'I'}-{span.label}")
        else:
            tags.append(OUTSIDE)
    return tags


def token_tags(
    offsets: Sequence[CharRange],
    word_ids: Sequence[int | None],
    spans: Sequence[Span],
    tag_index: Mapping[str, int],
    words: Mapping[int, CharRange] | None = None,
) -> list[int]:
    """The training target of every token of one tokenizer window: the tag id (`tag_index`)
    of its word on a word's first sub-token, `IGNORED` on special tokens and other sub-tokens.

    `words` as for `first_subtokens`: needed when the text spans several windows.
    """
    ranges = words if words is not None else word_ranges([(offsets, word_ids)])
    first = first_subtokens(offsets, word_ids, ranges)
    ids = list(first)
    targets = [IGNORED] * len(offsets)
    for word, tag in zip(ids, word_tags([ranges[word] for word in ids], spans), strict=True):
        targets[first[word]] = tag_index[tag]
    return targets


def spans_from_word_tags(text: str, words: Sequence[tuple[int, int, str, float]]) -> list[Span]:
    """The entities of predicted word tags: (start, end, BIO tag, probability) in text order.

    B-x I-x ... make one span from the first word's start to the last word's end, scored by
    the words' mean probability; an I-x after O or another type starts an entity, as seqeval
    reads tags.
    """
    spans: list[Span] = []
    current: list[tuple[int, int, str, float]] = []
    label = None

    def close() -> None:
        if current:
            spans.append(
                Span(current[0][0], current[-1][1], str(label), fmean(w[3] for w in current))
            )
            current.clear()

    for word in words:
        start, end, tag, _ = word
        if not 0 <= start < end <= len(text):
            raise ValueError(f"Word [{start}, {end}) is not in the {len(text)}-character text")
        prefix, _, tag_label = tag.partition("-")
        if tag == OUTSIDE or prefix == "B" or tag_label != label:
            close()
            label = None if tag == OUTSIDE else tag_label
        if tag != OUTSIDE:
            current.append(word)
    close()
    return spans


def snap_to_words(text: str, spans: Sequence[Span], words: Sequence[CharRange]) -> list[Span]:
    """`spans` as the tagger learns them: whole words, through the BIO tags of `words`.

    What a prediction can match exactly; spans that touch no word disappear.
    """
    tags = word_tags(words, spans)
    snapped = spans_from_word_tags(
        text, [(start, end, tag, 1.0) for (start, end), tag in zip(words, tags, strict=True)]
    )
    return [replace(span, score=None) for span in snapped]


def entity_type(tag: str) -> str:
    """The entity type of a BIO tag: "PER" for "B-PER" and "I-PER", "O" for "O"."""
    return tag.partition("-")[2] or OUTSIDE


def word_types(words: Sequence[CharRange], spans: Sequence[Span]) -> list[str]:
    """The entity type (or "O") of every word, as `word_tags` assigns words to spans."""
    return [entity_type(tag) for tag in word_tags(words, spans)]


def _overlap(a: CharRange, b: CharRange) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _retagged(before: Sequence[str], types: Sequence[str], changed: set[int]) -> list[str]:
    """BIO tags of words of these `types`: a `changed` word, and the word after it, belongs
    to the span of the word before it if that word has its type; other words keep their tag."""
    tags = []
    for index, kind in enumerate(types):
        if kind == OUTSIDE:
            tags.append(OUTSIDE)
        elif index in changed or index - 1 in changed:
            joins = index > 0 and types[index - 1] == kind
            tags.append(f"{'I' if joins else 'B'}-{kind}")
        else:
            tags.append(before[index])
    return tags


def relabel_words(
    text: str, spans: Sequence[Span], words: Sequence[CharRange], types: Mapping[int, str]
) -> list[Span]:
    """`spans` with the words at these indexes (into `words`, in text order) given these
    entity types ("O" for none), sorted by position.

    A relabelled word leaves the span it was in (which shrinks, or splits in two) and forms
    one span with the adjacent words of its new type. The spans that change cover whole
    words; all others keep their exact character ranges.
    """
    for index in types:
        if not 0 <= index < len(words):
            raise ValueError(f"Word {index} is not one of the text's {len(words)} words")
    before = word_tags(words, spans)
    kinds = [entity_type(tag) for tag in before]
    changed = {index for index, kind in types.items() if kind != kinds[index]}
    for index in changed:
        kinds[index] = types[index]
    after = _retagged(before, kinds, changed)
    retagged = [
        words[i] for i, (old, new) in enumerate(zip(before, after, strict=True)) if old != new
    ]
    # The spans a retagged word was in, and the words they held, are rebuilt from the tags.
    left = [s for s in spans if any(_overlap((s.start, s.end), word) for word in retagged)]
    region = [w for w in words if any(_overlap((s.start, s.end), w) for s in left)] + retagged
    rebuilt = [
        replace(span, score=None)
        for span in spans_from_word_tags(
            text, [(start, end, tag, 1.0) for (start, end), tag in zip(words, after, strict=True)]
        )
        if any(_overlap((span.start, span.end), word) for word in region)
    ]
    kept = [
        span
        for span in spans
        if span not in left
        and not any(_overlap((span.start, span.end), (new.start, new.end)) for new in rebuilt)
    ]
    return sorted([*kept, *rebuilt], key=_position)
