"""Stores a `SyncReport`: its counts as JSON, its batch's task list as a SQLite file."""

from __future__ import annotations

from typing import Any, ClassVar

from zenml.metadata.metadata_types import MetadataType

from annotation_loop.data.sync import SyncReport
from materializers.table_backed import TableBackedMaterializer


class SyncReportMaterializer(TableBackedMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (SyncReport,)
    TABLE_FIELD: ClassVar[str] = "tasks"

    def extract_metadata(self, data: SyncReport) -> dict[str, MetadataType]:
        return {
            "project_id": data.project_id,
            "batch": data.batch,
            "listed": data.listed,
            "created": data.created,
            "tasks": len(data.tasks),
        }
