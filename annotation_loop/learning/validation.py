"""A trained model's validation, as the evaluation step hands it to promotion and to the
learning curve, and as it is logged on the model version (`validation` metadata)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class ValidationReport(BaseModel):
    metric: str  # the task type's promotion metric
    score: float  # the new model's, on the validation split
    labelled_items: int  # in the snapshot it was trained on
    validation_items: int
    metrics: dict[str, Any]  # the task type's full metrics (JSON-able)
    # Production when the evaluation ran, scored on the same validation items.
    production_version_id: str | None = None
    production_version: str | None = None
    production_score: float | None = None


class PromotionReport(BaseModel):
    promoted: bool
    production_version: str | None  # what the new version was compared with, if anything
    production_score: float | None


class RecordedValidation(BaseModel):
    """What the loop reads back from a version's `validation` metadata (which also holds the
    task type's full metrics)."""

    metric: str
    score: float
    labelled_items: int
