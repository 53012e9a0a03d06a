"""Consensus by Dawid-Skene and per-annotator reliability, on synthetic annotators of known
error rates (the oracle's simulated annotators, labelling offline)."""

import json

import pytest

from annotation_loop.dev.oracle import SimulatedAnnotator, consensus_accuracy, crowd_snapshot
from annotation_loop.errors import ConfigurationError
from annotation_loop.learning.annotations import AnnotationSnapshot, LabelledItem
from annotation_loop.quality.aggregation import aggregate, annotator_reliability
from annotation_loop.quality.consensus import AnnotatorLabel
from annotation_loop.task_types import get_task_type
from annotation_loop.text.spans import Span

IMAGE = get_task_type("image")
LABELS = ("cat", "dog", "bird", "fish")


def item(task_id: int, labels: list[AnnotatorLabel]) -> LabelledItem:
    return LabelledItem.by_majority(
        task_id, f"hash:{task_id}", f"s3://b/batch_1/{task_id}.png", labels
    )


def simulate(
    annotators: list[SimulatedAnnotator], tasks: int
) -> tuple[AnnotationSnapshot, dict[int, str]]:
    """Every annotator labels every task; the snapshot and the true labels."""
    truth = {task_id: LABELS[task_id % len(LABELS)] for task_id in range(tasks)}
    return crowd_snapshot(IMAGE, LABELS, annotators, truth), truth


def test_dawid_skene_recovers_the_truth_better_than_the_majority():
    annotators = [
        SimulatedAnnotator("good-1", error_rate=0.2),
        SimulatedAnnotator("good-2", error_rate=0.2),
        SimulatedAnnotator("bad", error_rate=0.7),
    ]
    majority, truth = simulate(annotators, tasks=1000)
    assert majority.undecided, "some tasks split three ways: no majority"

    weighted = aggregate(majority, "dawid_skene")
    assert aggregate(majority, "majority") is majority
    assert not weighted.undecided, "the model decides the splits too"
    assert {i.decided_by for i in weighted.items.values()} == {"dawid_skene"}
    assert consensus_accuracy(weighted, truth) > consensus_accuracy(majority, truth) + 0.02


def test_reliability_ranks_a_careless_annotator_below_a_careful_one():
    annotators = [
        SimulatedAnnotator("careful", error_rate=0.0),
        SimulatedAnnotator("fair", error_rate=0.1),
        SimulatedAnnotator("careless", error_rate=0.4),
    ]
    snapshot, _ = simulate(annotators, tasks=300)
    # A task labelled by one annotator says nothing about anyone's reliability.
    single = item(1000, [AnnotatorLabel("careless", "dog")])
    snapshot.items[single.task_id] = single

    by_agreement = annotator_reliability(snapshot, "majority")
    assert {who: r.tasks for who, r in by_agreement.items()} == {
        "careful": 300,
        "careless": 300,
        "fair": 300,
    }
    assert all(r.estimated_accuracy is None for r in by_agreement.values())
    careful, careless = by_agreement["careful"].agreement, by_agreement["careless"].agreement
    assert careful is not None and careless is not None
    assert careless < careful

    estimated = annotator_reliability(snapshot, "dawid_skene")
    assert estimated["careful"].estimated_accuracy == pytest.approx(1.0, abs=0.02)
    assert estimated["careless"].estimated_accuracy == pytest.approx(0.6, abs=0.07)
    metadata = {who: r.as_metadata() for who, r in estimated.items()}
    assert json.loads(json.dumps(metadata)) == metadata
    assert set(metadata["careless"]) == {"tasks", "judged", "agreement", "estimated_accuracy"}


def test_reviewer_decisions_and_single_labels_are_left_as_they_are():
    annotators = [SimulatedAnnotator(name, error_rate=0.1) for name in ("a", "b", "c")]
    snapshot, _ = simulate(annotators, tasks=60)
    # Two annotators say "cat"; a reviewer confirmed the third one's "dog".
    overruled = item(
        500,
        [
            AnnotatorLabel("a", "cat"),
            AnnotatorLabel("b", "cat"),
            AnnotatorLabel("c", "dog", confirmed=True),
        ],
    )
    single = item(501, [AnnotatorLabel("a", "fish")])
    snapshot.items.update({overruled.task_id: overruled, single.task_id: single})

    weighted = aggregate(snapshot, "dawid_skene")
    assert weighted.items[500] is overruled and overruled.target == "dog"
    assert weighted.items[501] is single
    assert weighted.items[0].decided_by == "dawid_skene"


def test_dawid_skene_refuses_targets_that_are_not_one_label_in_one_line():
    spans = (Span(0, 4, "person"),)
    ner = AnnotationSnapshot.of_items(
        1, "ner", LABELS, [item(1, [AnnotatorLabel("a", spans), AnnotatorLabel("b", spans)])]
    )
    assert aggregate(ner, "majority") is ner
    for use in (
        lambda: aggregate(ner, "dawid_skene"),
        lambda: annotator_reliability(ner, "dawid_skene"),
    ):
        with pytest.raises(ConfigurationError) as error:
            use()
        assert "\n" not in str(error.value) and "use the majority consensus" in str(error.value)
    assert annotator_reliability(ner, "majority")["a"].agreement == 1.0
