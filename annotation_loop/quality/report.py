"""One training round's label quality: agreement on the overlap set, how many tasks wait for a
reviewer, each annotator's reliability, and the anchoring check."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from annotation_loop.learning.annotations import AnnotationSnapshot
from annotation_loop.quality.aggregation import AnnotatorReliability, annotator_reliability
from annotation_loop.quality.agreement import AgreementReport, measure_agreement
from annotation_loop.quality.anchoring import AnchoringReport, measure_anchoring
from annotation_loop.quality.consensus import AnnotatorNames, ConsensusMethod, annotator_name
from annotation_loop.quality.sampling import LabelQuality
from annotation_loop.task_types.capabilities import DemoData


@dataclass(frozen=True)
class LabelQualityReport:
    quality: LabelQuality  # the overlap and control sets measured
    consensus: ConsensusMethod
    undecided: int  # tasks waiting for a reviewer (the Disagreement tab)
    agreement: AgreementReport
    anchoring: AnchoringReport
    reliability: dict[str, AnnotatorReliability]  # by Label Studio user id

    def as_metadata(self) -> dict[str, Any]:
        """The model version's `label_quality` metadata (JSON-able)."""
        return {
            "quality": self.quality.model_dump(),
            "consensus": self.consensus,
            "undecided": self.undecided,
            "agreement": self.agreement.as_metadata(),
            "anchoring": self.anchoring.as_metadata(),
            "reliability": {who: r.as_metadata() for who, r in self.reliability.items()},
        }

    def lines(self, names: AnnotatorNames | None = None) -> list[str]:
        """The report for a terminal; annotators by `names` (their emails) where known."""
        reliability = [
            f"  {annotator_name(who, names)}: {r.tasks} shared tasks"
            + (
                f", agrees with the others' decision {r.agreement:.0%}"
                if r.agreement is not None
                else ""
            )
            + (
                f", estimated accuracy {r.estimated_accuracy:.0%}"
                if r.estimated_accuracy is not None
                else ""
            )
            for who, r in self.reliability.items()
        ]
        return [
            f"Consensus: {self.consensus}; {self.undecided} tasks without a majority wait for "
            "a reviewer",
            "Agreement:",
            *(f"  {line}" for line in self.agreement.lines(names)),
            "Annotators:",
            *(reliability or ["  none share a task yet"]),
            "Anchoring on pre-annotations:",
            *(f"  {line}" for line in self.anchoring.lines(names)),
        ]


def measure_label_quality(
    snapshot: AnnotationSnapshot, quality: LabelQuality, consensus: ConsensusMethod
) -> LabelQualityReport:
    task_type = snapshot.task_type
    items = list(snapshot.shared_items())
    # A demo task type compares targets as an annotator would (boxes within a tolerance).
    same_target = task_type.same_target if isinstance(task_type, DemoData) else operator.eq
    return LabelQualityReport(
        quality=quality,
        consensus=consensus,
        undecided=len(snapshot.undecided),
        agreement=measure_agreement(task_type, items, snapshot.labels),
        anchoring=measure_anchoring(items, quality, same_target),
        reliability=annotator_reliability(snapshot, consensus),
    )
