"""Stores a `TaskIndex` as JSON, with the project it indexes as artifact metadata, so the
next sync finds its own project's index without loading anybody else's."""

from __future__ import annotations

from typing import Any, ClassVar

from zenml.materializers.pydantic_materializer import PydanticMaterializer
from zenml.metadata.metadata_types import MetadataType

from annotation_loop.task_index import TaskIndex


class TaskIndexMaterializer(PydanticMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (TaskIndex,)

    def extract_metadata(self, data: Any) -> dict[str, MetadataType]:
        return {
            "label_studio_url": data.label_studio_url,
            "project_id": data.project_id,
            "indexed_tasks": len(data.tasks),
        }
