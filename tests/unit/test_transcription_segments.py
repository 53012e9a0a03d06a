"""Transcribed segments <-> Label Studio's long-audio results, exactly, and the task type's
targets in snapshots."""

import json

import pytest

from annotation_loop.audio.segments import (
    Segment,
    SegmentError,
    result_from_segments,
    segments_from_result,
)
from annotation_loop.errors import UnknownLabelError
from annotation_loop.task_types import get_task_type

LABELS = ["Speech", "Noise"]
URI = "s3://bucket/speech/batch_1/0001.wav"


def read(result, labels=LABELS):
    return segments_from_result(result, labels, "label", "transcription", "task 7")


def test_segments_round_trip_exactly_through_json():
    segments = [
        Segment(0.1, 2.602, "The movie was a delight!", "Speech", 0.73),
        Segment(3.0000000001, 5.343, "", "Noise"),  # no transcript: still a region
        Segment(1 / 3, 0.9, "one of the best", "Speech"),
    ]
    result = json.loads(
        json.dumps(result_from_segments(segments, "label", "transcription", "audio"))
    )
    assert read(result) == sorted(segments, key=lambda s: s.start)
    assert len(result) == 2 * len(segments), "a labels and a textarea result per region"
    labels, text = result[0], result[1]
    assert labels["id"] == text["id"] and labels["type"] == "labels" and text["type"] == "textarea"
    assert labels["value"] == {"start": 0.1, "end": 2.602, "channel": 0, "labels": ["Speech"]}
    assert text["value"]["text"] == ["The movie was a delight!"]
    assert labels["score"] == text["score"] == 0.73


def test_a_label_studio_annotation_reads_as_segments():
    """The shape Label Studio stores: its own region ids, a textarea with several lines."""
    result = [
        {"id": "wv1", "from_name": "label", "to_name": "audio", "type": "labels",
         "origin": "manual", "original_length": 6.1,
         "value": {"start": 3, "end": 5.5, "channel": 0, "labels": ["Speech"]}},
        {"id": "wv1", "from_name": "transcription", "to_name": "audio", "type": "textarea",
         "value": {"start": 3, "end": 5.5, "channel": 0, "text": ["one of the", "best films"]}},
    ]  # fmt: skip
    assert read(result) == [Segment(3.0, 5.5, "one of the best films", "Speech")]


@pytest.mark.parametrize(
    ("region", "error", "words"),
    [
        ({"value": {"start": 2.0, "end": 1.0, "labels": ["Speech"]}}, SegmentError, "ends after"),
        ({"value": {"start": "a", "end": 1.0, "labels": ["Speech"]}}, SegmentError, "not seconds"),
        ({"value": {"start": 0.0, "end": 1.0, "labels": []}}, SegmentError, "exactly one"),
        ({"value": {"start": 0.0, "end": 1.0, "labels": ["Music"]}}, UnknownLabelError, "Music"),
    ],
)
def test_unusable_regions_are_one_line_errors(region, error, words):
    region |= {"id": "r", "from_name": "label", "to_name": "audio", "type": "labels"}
    with pytest.raises(error, match=words) as raised:
        read([region])
    assert "\n" not in str(raised.value) and "task 7" in str(raised.value)


def test_a_transcript_without_a_region_is_refused():
    orphan = {"id": "x", "from_name": "transcription", "type": "textarea",
              "value": {"start": 0, "end": 1, "text": ["hi"]}}  # fmt: skip
    with pytest.raises(SegmentError, match="no labelled region"):
        read([orphan])


def test_the_task_type_round_trips_targets_and_compares_them():
    task_type = get_task_type("transcription")
    target = (Segment(0.4, 2.6, "Great film.", "Speech"), Segment(3.6, 5.3, "Loved it", "Speech"))
    encoded = json.loads(json.dumps(task_type.encode_target(target)))
    assert task_type.decode_target(encoded) == target
    result = task_type.result_for_target(target, URI)
    assert task_type.target_from_result(result, URI, LABELS, "task 1") == target
    assert task_type.labels_of(target) == ["Speech", "Speech"]
    predicted = (
        Segment(0.35, 2.7, "great film", "Speech", 0.9),
        Segment(3.5, 5.4, "loved it", "Speech", 0.8),
    )
    assert task_type.same_target(predicted, target)
    assert not task_type.same_target(predicted[:1], target)
    assert not task_type.same_target((predicted[0], predicted[0]), target), "times matter"
    config = task_type.label_config(LABELS)
    assert (
        '<TextArea name="transcription" toName="audio"' in config and 'perRegion="true"' in config
    )
    assert '<Label value="Noise"/>' in config and '<Audio name="audio" value="$audio"/>' in config
