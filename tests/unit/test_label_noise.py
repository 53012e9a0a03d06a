"""Label noise: each task type's wrong target differs from the right one by one unit."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from annotation_loop.audio.segments import Segment
from annotation_loop.detection.boxes import Box, ImageBoxes
from annotation_loop.dev.label_noise import MISHEARD_WORDS, wrong_target
from annotation_loop.errors import ConfigurationError
from annotation_loop.task_types import get_task_type
from annotation_loop.text.spans import Span

DIGITS = [str(d) for d in range(10)]
ENTITIES = ["PER", "ORG", "LOC"]
SPANS = (Span(0, 4, "PER"), Span(10, 16, "ORG"), Span(20, 25, "LOC"))
BOXES = ImageBoxes((64, 48), (Box("3", 1, 2, 10, 12), Box("7", 20, 5, 30, 40)))
SEGMENTS = (
    Segment(0.0, 1.5, "fresh and moving", "Speech"),
    Segment(2.0, 2.5, "", "Speech"),
    Segment(3.0, 4.0, "dull", "Speech"),
)


@pytest.mark.parametrize("task", ["image", "text"])
def test_a_classification_label_becomes_another_label_uniformly(task: str) -> None:
    rng = random.Random(0)
    drawn = Counter(wrong_target(get_task_type(task), "3", DIGITS, rng) for _ in range(9000))
    assert set(drawn) == set(DIGITS) - {"3"}
    # Uniform: each of the 9 others about 1000 times (a binomial sd of ~30).
    assert all(850 < count < 1150 for count in drawn.values())


def test_a_seeded_generator_gives_the_same_noise() -> None:
    image = get_task_type("image")
    first = [wrong_target(image, "3", DIGITS, random.Random(7)) for _ in range(3)]
    again = [wrong_target(image, "3", DIGITS, random.Random(7)) for _ in range(3)]
    assert first == again


def test_classification_needs_another_label_to_choose() -> None:
    with pytest.raises(ConfigurationError, match="at least two labels"):
        wrong_target(get_task_type("text"), "fresh", ["fresh"], random.Random(0))


def changed_units(before: tuple[object, ...], after: tuple[object, ...]) -> list[int]:
    return [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]


def test_ner_relabels_exactly_one_span_keeping_its_place() -> None:
    rng = random.Random(1)
    relabelled: Counter[int] = Counter()
    for _ in range(300):
        wrong = wrong_target(get_task_type("ner"), SPANS, ENTITIES, rng)
        [index] = changed_units(SPANS, wrong)
        assert (wrong[index].start, wrong[index].end) == (SPANS[index].start, SPANS[index].end)
        assert wrong[index].label in set(ENTITIES) - {SPANS[index].label}
        relabelled[index] += 1
    assert set(relabelled) == {0, 1, 2}  # any span may be the one


def test_ner_with_one_label_drops_a_span() -> None:
    spans = (Span(0, 4, "PER"), Span(10, 16, "PER"))
    wrong = wrong_target(get_task_type("ner"), spans, ["PER"], random.Random(0))
    assert len(wrong) == 1 and wrong[0] in spans


def test_detection_relabels_one_box_and_keeps_the_image_size() -> None:
    wrong = wrong_target(get_task_type("detection"), BOXES, DIGITS, random.Random(2))
    assert wrong.size == BOXES.size
    [index] = changed_units(BOXES.boxes, wrong.boxes)
    before, after = BOXES.boxes[index], wrong.boxes[index]
    assert after.label != before.label
    assert (after.x0, after.y0, after.x1, after.y1) == (before.x0, before.y0, before.x1, before.y1)


def test_detection_with_one_label_drops_a_box() -> None:
    boxes = ImageBoxes((64, 48), (Box("digit", 1, 2, 10, 12), Box("digit", 20, 5, 30, 40)))
    wrong = wrong_target(get_task_type("detection"), boxes, ["digit"], random.Random(0))
    assert len(wrong.boxes) == 1 and wrong.boxes[0] in boxes.boxes


def test_transcription_replaces_one_word_of_one_segment() -> None:
    rng = random.Random(3)
    for _ in range(100):
        wrong = wrong_target(get_task_type("transcription"), SEGMENTS, ["Speech"], rng)
        [index] = changed_units(SEGMENTS, wrong)
        before, after = SEGMENTS[index].text.split(), wrong[index].text.split()
        assert (wrong[index].start, wrong[index].end) == (
            SEGMENTS[index].start,
            SEGMENTS[index].end,
        )
        assert len(after) == len(before)
        [new] = [b for a, b in zip(before, after, strict=True) if a != b]
        assert new in MISHEARD_WORDS


@pytest.mark.parametrize(
    ("task", "target"),
    [
        ("ner", ()),
        ("detection", ImageBoxes(None)),
        ("transcription", (Segment(0, 1, "", "Speech"),)),
    ],
)
def test_a_target_with_nothing_to_spoil_is_returned_unchanged(task: str, target: object) -> None:
    assert wrong_target(get_task_type(task), target, ENTITIES, random.Random(0)) == target


def test_a_task_type_without_noise_is_a_configuration_error() -> None:
    class Unknown:
        name = "sentiment-regression"

    with pytest.raises(ConfigurationError, match="No label noise for task type"):
        wrong_target(Unknown(), 0.5, [], random.Random(0))  # type: ignore[arg-type]
