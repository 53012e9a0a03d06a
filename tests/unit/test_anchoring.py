"""The anchoring check: do annotators keep wrong pre-annotations, compared with the control
tasks shown without one?"""

import json
import operator
from itertools import count
from typing import Any

from annotation_loop.learning.annotations import LabelledItem
from annotation_loop.quality.anchoring import measure_anchoring
from annotation_loop.quality.consensus import AnnotatorLabel, majority_vote
from annotation_loop.quality.sampling import LabelQuality

QUALITY = LabelQuality(overlap_share=0.1, anchoring_share=0.05)
HONEST = ("1", "2", "3")  # the reference majority
COPIER, THINKER = "8", "9"  # keeps every suggestion; never looks at one


def content_hashes(withheld: bool) -> Any:
    """Content hashes whose draw does (or does not) withhold the pre-annotation."""
    for number in count():
        content_hash = f"item-{number}"
        if QUALITY.withholds_pre_annotation(content_hash) == withheld:
            yield content_hash


WITHHELD, SHOWN = content_hashes(True), content_hashes(False)


def item(
    task_id: int, content_hash: str, targets: dict[str, Any], suggestion: Any = None
) -> LabelledItem:
    labels = [AnnotatorLabel(who, target) for who, target in targets.items()]
    consensus = majority_vote(labels)
    return LabelledItem(
        task_id=task_id,
        content_hash=content_hash,
        input_ref=f"s3://b/batch_1/{task_id}.png",
        target=consensus.target,
        annotations=tuple(labels),
        decided_by=consensus.decided_by,
        suggestion=suggestion,
    )


def labelled(task_id: int, content_hash: str, truth: str, suggestion: str | None) -> LabelledItem:
    """A task the honest annotators label right, the copier as suggested (right when there
    is no suggestion), the thinker right."""
    targets = dict.fromkeys(HONEST, truth)
    targets[COPIER] = truth if suggestion is None else suggestion
    targets[THINKER] = truth
    return item(task_id, content_hash, targets, suggestion)


def test_a_copier_keeps_every_wrong_suggestion_and_a_thinker_none() -> None:
    items = [
        *(labelled(t, next(WITHHELD), "cat", None) for t in range(3)),  # control
        *(labelled(10 + t, next(SHOWN), "cat", "dog") for t in range(4)),  # wrong suggestion
        *(labelled(20 + t, next(SHOWN), "cat", "cat") for t in range(5)),  # right suggestion
    ]
    report = measure_anchoring(items, QUALITY, operator.eq)
    copier, thinker = report.per_annotator[COPIER], report.per_annotator[THINKER]
    assert (copier.wrong_suggestions, copier.wrong_kept) == (4, 4)
    assert copier.wrong_suggestions_kept == 1.0
    assert (thinker.wrong_suggestions, thinker.wrong_kept) == (4, 0)
    assert thinker.wrong_suggestions_kept == 0.0
    # The copier agrees with the others without a suggestion, and less with one.
    assert copier.control_agreement == 1.0
    assert copier.pre_annotated_agreement == 5 / 9
    assert thinker.pre_annotated_agreement == 1.0
    # All annotators: 5 judged annotations on each of the 4 wrong-suggestion tasks.
    assert (report.control_tasks, report.pre_annotated_tasks) == (3, 9)
    assert (report.wrong_suggestions, report.wrong_kept) == (20, 4)
    assert report.wrong_suggestions_kept == 4 / 20
    assert report.control_judged == 15 and report.control_agreement == 1.0
    assert sorted(report.per_annotator) == ["1", "2", "3", "8", "9"]
    assert copier.control_tasks == 3 and copier.pre_annotated_tasks == 9


def test_control_tasks_are_those_the_hash_withholds_with_nothing_shown() -> None:
    items = [
        labelled(1, next(WITHHELD), "cat", None),  # control
        # No model yet to pre-annotate: neither control nor pre-annotated.
        labelled(2, next(SHOWN), "cat", None),
        # Drawn to be withheld but shown a suggestion anyway: it was pre-annotated.
        labelled(3, next(WITHHELD), "cat", "dog"),
        # One annotator: nobody to judge them by.
        item(4, next(WITHHELD), {"1": "cat"}),
    ]
    report = measure_anchoring(items, QUALITY, operator.eq)
    assert (report.control_tasks, report.pre_annotated_tasks) == (1, 1)
    assert (report.control_judged, report.pre_annotated_judged) == (5, 5)


def test_annotations_without_a_reference_are_not_judged() -> None:
    # Two annotators who disagree: each one's reference is the other alone, a single label.
    split = item(1, next(SHOWN), {"1": "cat", "2": "dog"}, suggestion="dog")
    # Three who all disagree: leaving one out, the other two have no majority.
    three_way = item(2, next(SHOWN), {"1": "cat", "2": "dog", "3": "bird"}, suggestion="dog")
    report = measure_anchoring([split, three_way], QUALITY, operator.eq)
    assert report.pre_annotated_tasks == 2
    assert report.pre_annotated_judged == 2  # only the pair's, each by the other's label
    # Judged by 1's "cat", 2's "dog" is the wrong suggestion kept; 1's is judged by "dog",
    # which the suggestion equals.
    assert (report.wrong_suggestions, report.wrong_kept) == (1, 1)
    assert report.per_annotator["2"].wrong_suggestions_kept == 1.0
    assert report.per_annotator["3"].pre_annotated_judged == 0
    assert report.per_annotator["3"].wrong_suggestions_kept is None


def test_a_reviewers_decision_is_the_reference() -> None:
    labels = (
        AnnotatorLabel("1", "dog"),
        AnnotatorLabel("2", "dog"),
        AnnotatorLabel("3", "cat", confirmed=True),
    )
    reviewed = LabelledItem(
        task_id=1,
        content_hash=next(SHOWN),
        input_ref="s3://b/1.png",
        target="cat",
        annotations=labels,
        decided_by="reviewer",
        suggestion="dog",
    )
    report = measure_anchoring([reviewed], QUALITY, operator.eq)
    # 1 and 2 kept the wrong suggestion against the reviewer; 3 is judged by 1 and 2.
    assert report.per_annotator["1"].wrong_kept == 1
    assert report.per_annotator["3"].wrong_suggestions == 0
    assert report.per_annotator["3"].pre_annotated_agreement == 0.0


def test_targets_are_compared_with_the_task_types_comparison() -> None:
    items = [labelled(1, next(SHOWN), "cat", "Cat")]

    def case_blind(a: str, b: str) -> bool:
        return a.lower() == b.lower()

    strict = measure_anchoring(items, QUALITY, operator.eq)
    loose = measure_anchoring(items, QUALITY, case_blind)
    assert (
        strict.wrong_suggestions == 5
        and strict.per_annotator[COPIER].pre_annotated_agreement == 0.0
    )
    assert (
        loose.wrong_suggestions == 0 and loose.per_annotator[COPIER].pre_annotated_agreement == 1.0
    )


def test_labelling_nothing_equals_only_nothing() -> None:
    def never_called(a: Any, b: Any) -> bool:
        raise AssertionError(f"compared {a!r} with {b!r}")

    items = [item(1, next(WITHHELD), {"1": None, "2": None, "3": None})]
    report = measure_anchoring(items, QUALITY, never_called)
    assert report.control_agreement == 1.0


def test_metadata_and_lines() -> None:
    items = [labelled(1, next(WITHHELD), "cat", None), labelled(2, next(SHOWN), "cat", "dog")]
    report = measure_anchoring(items, QUALITY, operator.eq)
    metadata = json.loads(json.dumps(report.as_metadata()))
    assert metadata["wrong_suggestions_kept"] == report.wrong_suggestions_kept == 1 / 5
    assert metadata["control_agreement"] == 1.0
    assert metadata["per_annotator"][COPIER]["wrong_suggestions_kept"] == 1.0
    lines = report.lines()
    assert lines[0] == (
        "Anchoring on 1 control tasks (no pre-annotation) and 1 pre-annotated overlap tasks:"
    )
    assert "kept 1 of 5 wrong suggestions (20%)" in lines[1]
    assert any(line.startswith(f"  annotator {COPIER} ") for line in lines)
    named = report.lines({COPIER: "copier@example.com"})
    assert any(line.startswith("  copier@example.com agrees with") for line in named)
    nothing = measure_anchoring([], QUALITY, operator.eq)
    assert nothing.lines() == ["Anchoring: no overlap tasks with or without pre-annotation yet"]
    assert "control_agreement" not in nothing.as_metadata()
