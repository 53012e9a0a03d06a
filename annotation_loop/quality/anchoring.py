"""Whether annotators keep a pre-annotation they should have corrected (anchoring).

A stable-hash share of the overlap set is shown without pre-annotation: the control tasks
(`LabelQuality.withholds_pre_annotation`). Every annotation of an overlap task is judged
against the label decided without it (`consensus.reference_without`: a reviewer's decision,
else the other annotators' majority). Annotators who think for themselves agree with that
reference as often with a pre-annotation as without; annotators who accept what they are
shown keep wrong suggestions, so the telling figure is the share of annotations on tasks
with a wrong suggestion that equal the suggestion.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from annotation_loop.quality.consensus import (
    AnnotatorLabel,
    AnnotatorNames,
    annotator_name,
    reference_without,
)
from annotation_loop.quality.sampling import LabelQuality

if TYPE_CHECKING:
    from annotation_loop.learning.annotations import LabelledItem


@dataclass(frozen=True)
class AnchoringFigures:
    """Counts of one group of annotations (all, or one annotator's) on overlap tasks."""

    control_tasks: int = 0  # tasks without pre-annotation, chosen by hash
    control_judged: int = 0  # annotations on them with a reference to be judged by
    control_agreed: int = 0  # of those, equal to the reference
    pre_annotated_tasks: int = 0
    pre_annotated_judged: int = 0
    pre_annotated_agreed: int = 0
    wrong_suggestions: int = 0  # judged annotations where the suggestion differs from the reference
    wrong_kept: int = 0  # of those, equal to the suggestion

    @property
    def control_agreement(self) -> float | None:
        """The share of annotations on control tasks that agree with their reference."""
        return _share(self.control_agreed, self.control_judged)

    @property
    def pre_annotated_agreement(self) -> float | None:
        return _share(self.pre_annotated_agreed, self.pre_annotated_judged)

    @property
    def wrong_suggestions_kept(self) -> float | None:
        """The anchoring figure: the share of annotations that kept a wrong suggestion."""
        return _share(self.wrong_kept, self.wrong_suggestions)

    def __add__(self, other: AnchoringFigures) -> AnchoringFigures:
        return AnchoringFigures(
            *(getattr(self, f.name) + getattr(other, f.name) for f in dataclasses.fields(self))
        )

    def as_metadata(self) -> dict[str, int | float]:
        """The counts, and the shares that exist."""
        metadata: dict[str, int | float] = dataclasses.asdict(self)
        shares = {
            "control_agreement": self.control_agreement,
            "pre_annotated_agreement": self.pre_annotated_agreement,
            "wrong_suggestions_kept": self.wrong_suggestions_kept,
        }
        metadata.update({name: share for name, share in shares.items() if share is not None})
        return metadata

    def summary(self, verb: str = "agree") -> str:
        """One line of the shares, with what each is a share of, after its subject."""
        return (
            f"{verb} with the reference on {_percent(self.control_agreement)} of "
            f"{self.control_judged} annotations without pre-annotation, "
            f"{_percent(self.pre_annotated_agreement)} of {self.pre_annotated_judged} with; "
            f"kept {self.wrong_kept} of {self.wrong_suggestions} wrong suggestions "
            f"({_percent(self.wrong_suggestions_kept)})"
        )


@dataclass(frozen=True)
class AnchoringReport(AnchoringFigures):
    """All annotations' figures (tasks counted once), and each annotator's (by user id)."""

    per_annotator: dict[str, AnchoringFigures] = dataclasses.field(default_factory=dict)

    def as_metadata(self) -> dict[str, Any]:
        return {
            **super().as_metadata(),
            "per_annotator": {who: f.as_metadata() for who, f in self.per_annotator.items()},
        }

    def lines(self, names: AnnotatorNames | None = None) -> list[str]:
        """The report in a few lines, for a terminal; annotators by `names` where known."""
        if not (self.control_tasks or self.pre_annotated_tasks):
            return ["Anchoring: no overlap tasks with or without pre-annotation yet"]
        return [
            f"Anchoring on {self.control_tasks} control tasks (no pre-annotation) and "
            f"{self.pre_annotated_tasks} pre-annotated overlap tasks:",
            f"  all annotators {self.summary()}",
            *(
                f"  {annotator_name(who, names)} {f.summary('agrees')}"
                for who, f in self.per_annotator.items()
            ),
        ]


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def measure_anchoring(
    items: Iterable[LabelledItem],
    quality: LabelQuality,
    same_target: Callable[[Any, Any], bool],
) -> AnchoringReport:
    """Anchoring figures of the `items` labelled by several annotators (pass decided and
    undecided ones). A task is a control task when its hash withholds pre-annotation and
    none was shown; a pre-annotated one when a suggestion was shown; others (no model yet
    to pre-annotate) are neither. `same_target` compares two targets of the task type (e.g.
    boxes loosely); None, "labelled nothing", equals only None."""

    def same(a: Any, b: Any) -> bool:
        return a is b if a is None or b is None else same_target(a, b)

    overall = AnchoringFigures()
    per_annotator: dict[str, AnchoringFigures] = {}
    for item in items:
        if not item.shared:
            continue
        control = item.suggestion is None and quality.withholds_pre_annotation(item.content_hash)
        if not (control or item.suggestion is not None):
            continue
        task = AnchoringFigures(control_tasks=int(control), pre_annotated_tasks=int(not control))
        overall += task
        for label in item.annotations:
            judged = _judged(item, label, control, same)
            who = label.annotator
            per_annotator[who] = per_annotator.get(who, AnchoringFigures()) + task + judged
            overall += judged
    return AnchoringReport(
        **dataclasses.asdict(overall), per_annotator=dict(sorted(per_annotator.items()))
    )


def _judged(
    item: LabelledItem, label: AnnotatorLabel, control: bool, same: Callable[[Any, Any], bool]
) -> AnchoringFigures:
    """The figures of one annotation: judged against the label decided without it, if any."""
    reference = reference_without(item.annotations, label.annotator)
    if reference.decided_by == "none":
        return AnchoringFigures()
    agreed = int(same(label.target, reference.target))
    if control:
        return AnchoringFigures(control_judged=1, control_agreed=agreed)
    wrong = not same(item.suggestion, reference.target)
    return AnchoringFigures(
        pre_annotated_judged=1,
        pre_annotated_agreed=agreed,
        wrong_suggestions=int(wrong),
        wrong_kept=int(wrong and same(label.target, item.suggestion)),
    )
