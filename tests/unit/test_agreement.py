"""Inter-annotator agreement on the overlap set: Krippendorff's alpha and Cohen's kappa for
labels, span F1 for entities, IoU-matched F1 for boxes, 1 - WER for transcripts."""

import json
import random
from types import SimpleNamespace
from typing import Any

import pytest

from annotation_loop.audio.segments import Segment
from annotation_loop.detection.boxes import Box, ImageBoxes
from annotation_loop.learning.annotations import LabelledItem
from annotation_loop.quality.agreement import measure_agreement
from annotation_loop.quality.consensus import AnnotatorLabel
from annotation_loop.quality.plots import plot_agreement
from annotation_loop.task_types import TASK_TYPES, get_task_type
from annotation_loop.text.spans import Span

IMAGE = get_task_type("image")
LABELS = ("cat", "dog", "bird", "fish")


def item(task_id: int, targets: dict[str, Any]) -> LabelledItem:
    """A task labelled by each annotator (user id -> target)."""
    labels = [AnnotatorLabel(who, target) for who, target in targets.items()]
    return LabelledItem.by_majority(
        task_id, f"hash:{task_id}", f"s3://b/batch_1/{task_id}.png", labels
    )


def test_every_built_in_task_type_declares_how_agreement_is_measured() -> None:
    assert {name: t.agreement_kind for name, t in TASK_TYPES.items()} == {
        "image": "labels",
        "text": "labels",
        "ner": "spans",
        "detection": "boxes",
        "transcription": "transcripts",
    }


def test_perfect_agreement_is_one_everywhere_and_unused_classes_are_undefined() -> None:
    items = [item(t, dict.fromkeys("345", LABELS[t % 3])) for t in range(9)]
    report = measure_agreement(IMAGE, items, LABELS)
    assert report.measure == "krippendorff_alpha"
    assert report.tasks == 9 and report.annotations == 27
    assert report.overall == pytest.approx(1.0)
    assert report.per_class == {"cat": 1.0, "dog": 1.0, "bird": 1.0, "fish": None}
    assert [(p.annotator_a, p.annotator_b, p.tasks) for p in report.pairs] == [
        ("3", "4", 9),
        ("3", "5", 9),
        ("4", "5", 9),
    ]
    assert all(pair.value == pytest.approx(1.0) for pair in report.pairs)


def test_alpha_and_kappa_match_a_hand_computed_case() -> None:
    # Two annotators, four tasks: (cat, cat), (cat, dog), (dog, dog), (dog, dog).
    pairs = [("cat", "cat"), ("cat", "dog"), ("dog", "dog"), ("dog", "dog")]
    items = [item(t, {"1": a, "2": b}) for t, (a, b) in enumerate(pairs)]
    report = measure_agreement(IMAGE, items, LABELS)
    # Krippendorff from the coincidence matrix: 8 pairable values, 3 cats and 5 dogs; two
    # ordered disagreeing pairs (cat-dog, dog-cat) from the one split task.
    observed = 2 / 8
    expected = 2 * 3 * 5 / (8 * 7)
    assert report.overall == pytest.approx(1 - observed / expected)
    # Cohen: observed 3/4; chance = P1(cat) P2(cat) + P1(dog) P2(dog) = 2/4 1/4 + 2/4 3/4.
    chance = 0.5 * 0.25 + 0.5 * 0.75
    assert report.pairs[0].value == pytest.approx((0.75 - chance) / (1 - chance))
    # With two classes, "cat or not" is the same data as the labels themselves.
    assert report.per_class["cat"] == pytest.approx(report.overall)
    assert report.per_class["dog"] == pytest.approx(report.overall)


def test_tasks_with_one_annotation_are_ignored() -> None:
    agreed = [item(t, {"1": LABELS[t % 2], "2": LABELS[t % 2]}) for t in range(6)]
    # One annotator alone disagrees with nobody, however odd their labels.
    alone = [item(100 + t, {"1": "fish"}) for t in range(6)]
    report = measure_agreement(IMAGE, agreed + alone, LABELS)
    assert (report.tasks, report.annotations) == (6, 12)
    assert report.overall == pytest.approx(1.0)
    assert report.per_class["fish"] is None


def test_labelling_nothing_is_a_category_of_its_own() -> None:
    same = [item(t, {"1": LABELS[t % 2], "2": LABELS[t % 2]}) for t in range(6)]
    both_nothing = measure_agreement(IMAGE, [*same, item(9, {"1": None, "2": None})], LABELS)
    one_nothing = measure_agreement(IMAGE, [*same, item(9, {"1": None, "2": "cat"})], LABELS)
    assert both_nothing.overall == pytest.approx(1.0)
    assert one_nothing.overall is not None and one_nothing.overall < 1.0


def test_an_annotator_who_misses_one_class_lowers_only_that_class() -> None:
    truth = [LABELS[t % 4] for t in range(40)]
    items = [
        item(t, {"1": label, "2": label, "3": None if label == "bird" and t % 8 < 4 else label})
        for t, label in enumerate(truth)
    ]
    report = measure_agreement(IMAGE, items, LABELS)
    assert report.per_class["bird"] is not None and report.per_class["bird"] < 0.9
    assert [report.per_class[label] for label in ("cat", "dog", "fish")] == [1.0, 1.0, 1.0]
    kappa = {(p.annotator_a, p.annotator_b): p.value for p in report.pairs}
    assert kappa["1", "2"] == pytest.approx(1.0)
    assert kappa["1", "3"] is not None and kappa["1", "3"] < 1.0


def test_random_labels_agree_about_as_much_as_chance() -> None:
    draw = random.Random(7)
    items = [item(t, {who: draw.choice(LABELS) for who in "123"}) for t in range(600)]
    report = measure_agreement(IMAGE, items, LABELS)
    assert report.overall is not None and abs(report.overall) < 0.05
    assert all(p.value is not None and abs(p.value) < 0.1 for p in report.pairs)


def test_kappa_needs_two_shared_tasks() -> None:
    items = [
        item(1, {"1": "cat", "2": "cat", "3": "dog"}),
        item(2, {"1": "dog", "2": "dog"}),
    ]
    pairs = {
        (p.annotator_a, p.annotator_b): p for p in measure_agreement(IMAGE, items, LABELS).pairs
    }
    assert pairs["1", "2"].tasks == 2 and pairs["1", "2"].value == pytest.approx(1.0)
    assert pairs["1", "3"].tasks == 1 and pairs["1", "3"].value is None


NER_LABELS = ("person", "location", "product")


def test_span_agreement_is_exact_match_f1() -> None:
    ner = get_task_type("ner")
    person, place = Span(0, 5, "person"), Span(10, 15, "location")
    items = [
        # The same person; the place one character shorter: not the same entity.
        item(1, {"1": (person, place), "2": (person, Span(10, 14, "location"))}),
        item(2, {"1": (Span(0, 3, "person"),), "2": (Span(0, 3, "person"),)}),
    ]
    report = measure_agreement(ner, items, NER_LABELS)
    assert report.measure == "span_f1"
    # 2 spans in common of 3 each: 2 * 2 / (3 + 3).
    assert report.overall == pytest.approx(2 / 3)
    assert report.per_class == {"person": 1.0, "location": 0.0, "product": None}
    assert report.pairs[0].value == pytest.approx(2 / 3)


def test_span_agreement_pools_pairs_and_is_undefined_without_spans() -> None:
    ner = get_task_type("ner")
    person = Span(0, 5, "person")
    items = [item(1, {"1": (person,), "2": (person,), "3": ()}), item(2, {"1": (), "2": ()})]
    report = measure_agreement(ner, items, NER_LABELS)
    pairs = {(p.annotator_a, p.annotator_b): p.value for p in report.pairs}
    assert pairs == {("1", "2"): 1.0, ("1", "3"): 0.0, ("2", "3"): 0.0}
    # Pooled: 1 match among 1 + 1 (pair 1-2) + 1 (1-3) + 1 (2-3) spans.
    assert report.overall == pytest.approx(2 * 1 / 4)
    nobody = measure_agreement(ner, [item(3, {"1": (), "2": ()})], NER_LABELS)
    assert nobody.overall is None and nobody.pairs[0].value is None


def boxes(*found: Box) -> ImageBoxes:
    return ImageBoxes((28, 28), found)


def test_boxes_agree_when_they_overlap_with_iou_of_one_half() -> None:
    detection = get_task_type("detection")
    labels = ("0", "1", "2")
    square = Box("1", 0, 0, 10, 10)
    items = [
        item(1, {"1": boxes(square), "2": boxes(Box("1", 1, 0, 11, 10))}),  # IoU 90/110
        item(2, {"1": boxes(square), "2": boxes(Box("1", 6, 0, 16, 10))}),  # IoU 40/160
        item(3, {"1": boxes(square), "2": boxes(Box("0", 0, 0, 10, 10))}),  # another digit
        item(4, {"1": boxes(), "2": boxes()}),  # both: nothing here
    ]
    report = measure_agreement(detection, items, labels)
    assert report.measure == "box_f1"
    # One match among 6 boxes; of the 5 ones, 2 matched.
    assert report.overall == pytest.approx(2 * 1 / 6)
    assert report.per_class == {"0": 0.0, "1": pytest.approx(2 * 1 / 5), "2": None}
    perfect = measure_agreement(detection, items[:1], labels)
    assert perfect.overall == 1.0 and perfect.pairs[0].value == 1.0


def transcript(*texts: str) -> tuple[Segment, ...]:
    return tuple(Segment(2.0 * i, 2.0 * i + 1.5, text, "Speech") for i, text in enumerate(texts))


def test_transcript_agreement_is_one_minus_wer_both_ways() -> None:
    transcription = get_task_type("transcription")
    items = [
        item(
            1,
            {
                "1": transcript("the cat sat", "on the mat"),
                "2": transcript("the dog sat on the mat"),
            },
        ),
        item(2, {"1": transcript("hello there"), "2": transcript("Hello, there!")}),
    ]
    report = measure_agreement(transcription, items, ("Speech",))
    assert report.measure == "word_accuracy" and report.per_class == {}
    # One substitution each way, over 6 + 2 words each way (normalised: case, punctuation).
    assert report.overall == pytest.approx(1 - 2 / 16)
    swapped = [
        item(t.task_id, dict(reversed([(a.annotator, a.target) for a in t.annotations])))
        for t in items
    ]
    assert measure_agreement(transcription, swapped, ("Speech",)).overall == report.overall


def test_task_types_without_a_measure_are_reported_as_not_measured() -> None:
    custom = SimpleNamespace(agreement_kind=None)
    items = [item(1, {"1": "a", "2": "b"})]
    report = measure_agreement(custom, items, ["a", "b"])  # type: ignore[arg-type]
    assert (report.measure, report.tasks, report.overall, report.pairs) == (
        "not measured",
        1,
        None,
        (),
    )
    assert report.lines() == ["Agreement: not measured for this task type"]
    assert report.as_metadata() == {"measure": "not measured", "tasks": 1, "annotations": 2}


def test_metadata_and_lines_say_what_was_measured() -> None:
    items = [
        item(1, {"3": "cat", "4": "cat"}),
        item(2, {"3": "dog", "4": "dog"}),
        item(3, {"3": "dog", "4": "cat"}),
    ]
    report = measure_agreement(IMAGE, items, LABELS)
    metadata = json.loads(json.dumps(report.as_metadata()))
    assert metadata["krippendorff_alpha"] == pytest.approx(report.overall)
    assert set(metadata["per_class"]) == {"cat", "dog"}  # undefined classes left out
    assert metadata["pairs"] == {"3 vs 4": {"tasks": 3, "cohen_kappa": report.pairs[0].value}}
    lines = report.lines()
    assert lines[0].startswith("Agreement on 3 overlap tasks (6 annotations): Krippendorff's alpha")
    assert "bird -" in lines[1]
    assert lines[2].startswith("  annotator 3 vs annotator 4: Cohen's kappa")
    # With the emails Label Studio gives (user 4's unknown), the lines name them.
    named = report.lines({"3": "ann@example.com"})
    assert named[2].startswith("  ann@example.com vs annotator 4: Cohen's kappa")
    empty = measure_agreement(IMAGE, [item(5, {"3": "cat"})], LABELS)
    assert "no overlap tasks yet" in empty.lines()[0]
    assert empty.as_metadata()["pairs"] == {}


def test_plot_shows_pairs_and_classes() -> None:
    items = [
        item(t, {"1": LABELS[t % 2], "2": LABELS[t % 2], "3": LABELS[t % 3]}) for t in range(12)
    ]
    with_classes = plot_agreement(measure_agreement(IMAGE, items, LABELS))
    transcripts = [item(1, {"1": transcript("a b"), "2": transcript("a c")})]
    pairs_only = plot_agreement(
        measure_agreement(get_task_type("transcription"), transcripts, ("Speech",))
    )
    # The class bars widen the figure beside the heatmap.
    assert with_classes.width > pairs_only.width > 0
    assert with_classes.format == "PNG"
