"""Stores an `AnnotationSnapshot` as gzipped JSON in any artifact store (local, S3, ...)."""

from __future__ import annotations

import gzip
import json
import os
from dataclasses import asdict
from datetime import datetime
from typing import Any, ClassVar

from zenml.enums import ArtifactType, VisualizationType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.metadata.metadata_types import MetadataType

from annotation_loop.learning.annotations import AnnotationSnapshot, LabelledItem, MergeReport
from annotation_loop.quality.consensus import AnnotatorLabel
from annotation_loop.task_types import TaskType, get_task_type
from materializers.artifact_files import files, refuse

SNAPSHOT_FILE = "snapshot.json.gz"
SUMMARY_FILE = "summary.md"
FOLDER = files("an annotation snapshot", [SNAPSHOT_FILE, SUMMARY_FILE])
# 100k labelled items are tens of MB of JSON; a file that inflates past this is not one the
# loop wrote (a decompression bomb), and is refused before it fills the step's memory.
MAX_SNAPSHOT_BYTES = 512 * 2**20


class AnnotationSnapshotMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (AnnotationSnapshot,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.DATA

    def load(self, data_type: type[Any]) -> AnnotationSnapshot:
        FOLDER.check_folder(self.artifact_store, self.uri)
        with (
            self.artifact_store.open(os.path.join(self.uri, SNAPSHOT_FILE), "rb") as handle,
            gzip.GzipFile(fileobj=handle) as inflated,
        ):
            try:
                raw = inflated.read(MAX_SNAPSHOT_BYTES + 1)
            except (OSError, EOFError) as error:  # gzip.BadGzipFile is an OSError
                raise refuse(self.uri, f"{SNAPSHOT_FILE} is not gzip ({error})") from None
        if len(raw) > MAX_SNAPSHOT_BYTES:
            raise refuse(self.uri, f"{SNAPSHOT_FILE} inflates past {MAX_SNAPSHOT_BYTES >> 20} MiB")
        payload = json.loads(raw)
        watermark = payload["watermark"]
        task = payload.get("task", "image")  # older snapshots are image snapshots
        task_type = get_task_type(task)
        items = [_item_from_row(row, task_type) for row in payload["items"]]
        undecided = [_item_from_row(row, task_type) for row in payload.get("undecided", [])]
        return AnnotationSnapshot(
            project_id=payload["project_id"],
            task=task,
            labels=tuple(payload["labels"]),
            items={item.task_id: item for item in items},
            undecided={item.task_id: item for item in undecided},
            watermark=datetime.fromisoformat(watermark) if watermark else None,
            last_merge=MergeReport(**payload["last_merge"]),
        )

    def save(self, data: AnnotationSnapshot) -> None:
        task_type = data.task_type
        payload = {
            "project_id": data.project_id,
            "task": data.task,
            "labels": list(data.labels),
            "items": [_row_of(item, task_type) for item in data.items.values()],
            "undecided": [_row_of(item, task_type) for item in data.undecided.values()],
            "watermark": data.watermark.isoformat() if data.watermark else None,
            "last_merge": asdict(data.last_merge),
        }
        with self.artifact_store.open(os.path.join(self.uri, SNAPSHOT_FILE), "wb") as handle:
            handle.write(gzip.compress(json.dumps(payload).encode()))

    def extract_metadata(self, data: AnnotationSnapshot) -> dict[str, MetadataType]:
        return {
            "task": data.task,
            "labelled_items": len(data.items),
            "watermark": data.watermark.isoformat() if data.watermark else "",
            "label_counts": data.label_counts(),
            "last_merge": asdict(data.last_merge),
        }

    def save_visualizations(self, data: AnnotationSnapshot) -> dict[str, VisualizationType]:
        rows = "\n".join(f"| {label} | {n} |" for label, n in data.label_counts().items())
        merge = data.last_merge
        summary = (
            f"### Annotation snapshot: {len(data.items)} labelled items\n\n"
            f"Watermark: {data.watermark.isoformat() if data.watermark else 'none'}\n\n"
            f"Last fetch: {merge.fetched_tasks} changed tasks, {merge.added} added, "
            f"{merge.relabelled} relabelled, {merge.removed} removed, "
            f"{merge.cancelled} skipped/cancelled, {merge.empty} empty\n\n"
            f"Undecided (annotators disagree, no majority): {len(data.undecided)} tasks\n\n"
            f"| label | annotated |\n|---|---|\n{rows}\n"
        )
        path = os.path.join(self.uri, SUMMARY_FILE)
        with self.artifact_store.open(path, "w") as handle:
            handle.write(summary)
        return {path.replace("\\", "/"): VisualizationType.MARKDOWN}


def _encoded(task_type: TaskType, target: Any) -> Any:
    return None if target is None else task_type.encode_target(target)


def _decoded(task_type: TaskType, stored: Any) -> Any:
    return None if stored is None else task_type.decode_target(stored)


def _row_of(item: LabelledItem, task_type: TaskType) -> dict[str, Any]:
    return {
        "task_id": item.task_id,
        "content_hash": item.content_hash,
        "input_ref": item.input_ref,
        "target": _encoded(task_type, item.target),
        "annotations": [
            [label.annotator, _encoded(task_type, label.target), label.confirmed]
            for label in item.annotations
        ],
        "decided_by": item.decided_by,
        "suggestion": _encoded(task_type, item.suggestion),
    }


def _item_from_row(row: dict[str, Any], task_type: TaskType) -> LabelledItem:
    # Snapshots written before task types existed are image snapshots whose items name
    # their object `uri` and `label`, and before label quality they kept one label per task;
    # reading them keeps an upgraded project incremental.
    return LabelledItem(
        task_id=row["task_id"],
        content_hash=row["content_hash"],
        input_ref=row["input_ref"] if "input_ref" in row else row["uri"],
        target=_decoded(task_type, row["target"] if "target" in row else row["label"]),
        annotations=tuple(
            AnnotatorLabel(annotator, _decoded(task_type, target), confirmed)
            for annotator, target, confirmed in row.get("annotations", [])
        ),
        decided_by=row.get("decided_by", "single"),
        suggestion=_decoded(task_type, row.get("suggestion")),
    )
