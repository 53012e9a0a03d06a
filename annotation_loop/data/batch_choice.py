"""Which batch an inference run syncs, as the sync step hands the choice to the pipeline."""

from __future__ import annotations

from pydantic import BaseModel


class BatchChoice(BaseModel):
    batch: str | None  # None: every batch is synced already, nothing to do
    project_id: int
    reason: str  # one line: why this batch, or why none
