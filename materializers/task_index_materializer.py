"""Stores a `TaskIndex` as its SQLite file, with the project it indexes as artifact
metadata, so the next sync finds its own project's index without loading anybody else's."""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.metadata.metadata_types import MetadataType

from annotation_loop.data.task_index import TaskIndex
from annotation_loop.labelstudio import TaskRef
from materializers.artifact_files import files, read_table

INDEX_FILE = "task_index.sqlite"
JSON_FILE = "data_v2.json"  # where indexes were stored before (ZenML's pydantic materializer)
FOLDER = files("a task index", [INDEX_FILE, JSON_FILE])


class TaskIndexMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (TaskIndex,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def load(self, data_type: type[Any]) -> TaskIndex:
        if INDEX_FILE not in FOLDER.check_folder(self.artifact_store, self.uri):
            return self._load_json()
        return read_table(self.artifact_store, self.uri, INDEX_FILE, TaskIndex.load)

    def _load_json(self) -> TaskIndex:
        # An index stored as JSON by an earlier version: reading it keeps an upgraded
        # project's next sync incremental.
        with self.artifact_store.open(os.path.join(self.uri, JSON_FILE), "r") as handle:
            payload = json.loads(handle.read())
        index = TaskIndex(payload["label_studio_url"], payload["project_id"])
        index.extend(
            TaskRef(id=task_id, content_hash=content_hash, uri=uri, batch=batch)
            for content_hash, (task_id, uri, batch) in sorted(
                payload["tasks"].items(), key=lambda entry: entry[1][0]
            )
        )
        index.max_task_id, index.task_count = payload["max_task_id"], payload["task_count"]
        return index

    def save(self, data: TaskIndex) -> None:
        with self.artifact_store.open(os.path.join(self.uri, INDEX_FILE), "wb") as handle:
            data.dump(handle)

    def extract_metadata(self, data: TaskIndex) -> dict[str, MetadataType]:
        return {
            "label_studio_url": data.label_studio_url,
            "project_id": data.project_id,
            "indexed_tasks": len(data),
        }
