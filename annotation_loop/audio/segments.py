"""Transcribed segments of an audio file <-> Label Studio's long-audio results.

The long-audio template pairs two results per region, sharing the region's `id`: a
`labels` result (`value.start`/`end` in seconds, `value.labels`) and the per-region
`textarea` result holding its transcript (`value.text`, a list of strings). Conversion is
exact both ways: times stay the floats Label Studio stores.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from annotation_loop.errors import LoopError, UnknownLabelError

LABELS_REGION = "labels"
TEXTAREA_REGION = "textarea"


@dataclass(frozen=True)
class Segment:
    start: float  # seconds from the beginning of the file
    end: float
    text: str  # the transcript; "" for a region nobody transcribed
    label: str  # the region's label ("Speech")
    # The recogniser's confidence, for predicted segments; annotations have none.
    score: float | None = None


class SegmentError(LoopError):
    """A region in an annotation that cannot be used."""


def _in(where: str) -> str:
    return f" in {where}" if where else ""


def _times(region: Mapping[str, Any], where: str) -> tuple[float, float]:
    value = region.get("value", {})
    start, end = value.get("start"), value.get("end")
    if not all(isinstance(t, int | float) and not isinstance(t, bool) for t in (start, end)):
        raise SegmentError(
            f"Region {region.get('id')!r}{_in(where)} has times {start!r}, {end!r}, not "
            "seconds: label an <Audio> object with <Labels>"
        )
    if not 0 <= start < end:
        raise SegmentError(
            f"Region {region.get('id')!r}{_in(where)} runs from {start} s to {end} s: "
            "draw it again so that it starts at 0 s or later and ends after it starts"
        )
    return float(start), float(end)


def segments_from_result(
    result: Sequence[Mapping[str, Any]],
    labels: Sequence[str],
    label_name: str,
    transcript_name: str,
    where: str = "",
) -> list[Segment]:
    """The labelled regions of a result with their transcripts, in time order.

    A region without a transcript has text ""; a transcript whose region has no label is a
    `SegmentError`, a label outside `labels` an `UnknownLabelError`.
    """
    texts: dict[str, str] = {}
    for region in result:
        if region.get("type") == TEXTAREA_REGION and region.get("from_name") == transcript_name:
            lines = region.get("value", {}).get("text", [])
            texts[str(region.get("id"))] = " ".join(str(line).strip() for line in lines).strip()
    segments = []
    for region in result:
        if region.get("type") != LABELS_REGION or region.get("from_name") != label_name:
            continue
        start, end = _times(region, where)
        chosen = region.get("value", {}).get("labels", [])
        if len(chosen) != 1:
            raise SegmentError(
                f"Region {start}-{end} s{_in(where)} has labels {chosen}, not exactly one: "
                "give each segment one label"
            )
        if chosen[0] not in labels:
            raise UnknownLabelError(
                f"Region {start}-{end} s{_in(where)} is labelled {chosen[0]!r}, which is not "
                f"one of the project's labels {list(labels)}: add it to LOOP_LABELS"
            )
        score = region.get("score")
        text = texts.pop(str(region.get("id")), "")
        segments.append(Segment(start, end, text, chosen[0], None if score is None else score))
    if texts:
        raise SegmentError(
            f"A transcript{_in(where)} belongs to no labelled region (ids {sorted(texts)}): "
            "select a region and label it before typing its transcript"
        )
    return sorted(segments, key=lambda s: (s.start, s.end))


def _region_id(index: int, segment: Segment) -> str:
    # Stable, so that writing the same prediction twice gives the same regions.
    key = f"{index}:{segment.start!r}:{segment.end!r}:{segment.label}"
    return hashlib.sha1(key.encode()).hexdigest()[:10]


def result_from_segments(
    segments: Sequence[Segment], label_name: str, transcript_name: str, to_name: str
) -> list[dict[str, Any]]:
    """The `labels` + `textarea` result pair of each segment; `segments_from_result` reads
    them back."""
    result: list[dict[str, Any]] = []
    for index, segment in enumerate(segments):
        shared: dict[str, Any] = {"id": _region_id(index, segment), "to_name": to_name}
        if segment.score is not None:
            shared["score"] = segment.score
        times = {"start": segment.start, "end": segment.end, "channel": 0}
        result.append(
            shared
            | {
                "from_name": label_name,
                "type": LABELS_REGION,
                "value": times | {"labels": [segment.label]},
            }
        )
        result.append(
            shared
            | {
                "from_name": transcript_name,
                "type": TEXTAREA_REGION,
                "value": times | {"text": [segment.text]},
            }
        )
    return result
