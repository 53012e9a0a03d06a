"""Stores `BatchPredictions`: the run's facts as JSON, the predictions as a SQLite file."""

from __future__ import annotations

from typing import Any, ClassVar

from zenml.metadata.metadata_types import MetadataType

from annotation_loop.learning.pre_annotations import BatchPredictions
from materializers.table_backed import TableBackedMaterializer


class BatchPredictionsMaterializer(TableBackedMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (BatchPredictions,)
    TABLE_FIELD: ClassVar[str] = "predictions"

    def extract_metadata(self, data: BatchPredictions) -> dict[str, MetadataType]:
        return {
            "model_version": data.model_version or "",
            "predictions": len(data.predictions),
            "already_predicted": data.already_predicted,
            "unreadable": len(data.unreadable),
        }
