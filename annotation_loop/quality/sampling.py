"""Which tasks the label-quality checks use, chosen by a stable hash of the item's content.

The same item lands in the same set in every run and on every machine, whatever order its
tasks are created in: Label Studio's own overlap cohort is re-drawn at random whenever tasks
are added, which would move tasks in and out of the overlap set between rounds. The hash is
salted, so these sets are independent of the validation split (`in_validation`).
"""

from __future__ import annotations

import hashlib

from pydantic import BaseModel, ConfigDict, Field, model_validator

_SALT = b"label-quality:"


class LabelQuality(BaseModel):
    """How the project checks its labels (`LOOP_OVERLAP_SHARE`, `LOOP_OVERLAP_ANNOTATORS`,
    `LOOP_ANCHORING_SHARE`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # The share of tasks labelled by `overlap_annotators` people each (0: none).
    overlap_share: float = Field(default=0.1, ge=0.0, le=1.0)
    overlap_annotators: int = Field(default=3, ge=2)
    # The share of tasks shown without a pre-annotation, to measure anchoring on it. They
    # are the first part of the overlap set, so each has a consensus to be compared with.
    anchoring_share: float = Field(default=0.05, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _anchoring_within_overlap(self) -> LabelQuality:
        if self.anchoring_share > self.overlap_share:
            raise ValueError(
                f"anchoring_share ({self.anchoring_share}) must not exceed overlap_share "
                f"({self.overlap_share}): the tasks without pre-annotation are compared with "
                "their overlap consensus"
            )
        return self

    def in_overlap(self, content_hash: str) -> bool:
        return quality_draw(content_hash) < self.overlap_share

    def withholds_pre_annotation(self, content_hash: str) -> bool:
        return quality_draw(content_hash) < self.anchoring_share


def quality_draw(content_hash: str) -> float:
    """A number in [0, 1) fixed by the item's content."""
    digest = hashlib.sha256(_SALT + content_hash.encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
