"""The model's predictions in Label Studio: pushing them as pre-annotations, finding the
tasks that hold a model version's, and showing annotators one version's.

Measured on Label Studio 1.23.2 (SQLite, 2 cores): predictions import ~1,600/s only with the
server flag `fflag_fix_back_4620_memory_efficient_predictions_import_08012025_short=true`:
without it every request recounts all the project's tasks (5k tasks: ~700/s in chunks of
2,000; 50k tasks: ~100-300/s), so large chunks pay.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence, Sized
from dataclasses import dataclass
from typing import Any

from annotation_loop.labelstudio import filters
from annotation_loop.labelstudio.chunked_imports import IMPORT_MAX_BYTES, Chunking, import_in_chunks
from annotation_loop.labelstudio.task_pages import tasks_by_id
from annotation_loop.labelstudio.transport import ApiArea

UNCERTAINTY_SAMPLING = "Uncertainty sampling"  # the labelling stream: lowest prediction score first
# Data Manager truncates its text columns (e.g. predictions_model_versions) to this length.
DM_TEXT_LIMIT = 500
# Task ids per Data Manager query when restricting to given tasks (keeps the URL ~8 KB).
SELECTED_IDS_PER_QUERY = 1000


@dataclass(frozen=True)
class PredictionIn:
    """A prediction to push as a pre-annotation."""

    task_id: int
    result: list[dict[str, Any]]
    score: float
    model_version: str


class Predictions(ApiArea):
    """The model's predictions in Label Studio's projects."""

    def import_predictions(
        self,
        project_id: int,
        predictions: Iterable[PredictionIn],
        chunk_size: int = 5000,
        total: int | None = None,
        max_bytes: int = IMPORT_MAX_BYTES,
    ) -> int:
        """Pushes predictions in bulk, a chunk at a time as `predictions` yields them (at most
        `chunk_size` and `max_bytes` of JSON per request; `total`: how many, for the progress
        bar); returns how many Label Studio created.

        After a chunk failed in doubt, the tasks that now hold their prediction's model
        version are left out of the resend, so no task gets the same prediction twice.
        """

        def send(chunk: Sequence[PredictionIn], body: bytes) -> list[bool]:
            created = self.transport.request(
                "POST",
                f"/api/projects/{project_id}/import/predictions",
                json_content=body,
                repeatable=False,
            )["created"]
            return [position < created for position in range(len(chunk))]

        def already_created(chunk: Sequence[PredictionIn]) -> dict[int, bool]:
            holding = {
                version: self.task_ids_with_prediction(
                    project_id, version, [p.task_id for p in chunk if p.model_version == version]
                )
                for version in {p.model_version for p in chunk}
            }
            return {
                position: True
                for position, p in enumerate(chunk)
                if p.task_id in holding[p.model_version]
            }

        if total is None and isinstance(predictions, Sized):
            total = len(predictions)
        chunking = Chunking("predictions", total, chunk_size, max_bytes)
        return sum(
            import_in_chunks(self.transport, predictions, chunking, _encode, send, already_created)
        )

    def task_ids_with_prediction(
        self, project_id: int, model_version: str, task_ids: Collection[int] | None = None
    ) -> set[int]:
        """The tasks (of `task_ids`, or all) holding a prediction of `model_version`."""
        selections: list[Sequence[int] | None] = [None]
        if task_ids is not None:
            ids = sorted(task_ids)
            selections = [
                ids[i : i + SELECTED_IDS_PER_QUERY]
                for i in range(0, len(ids), SELECTED_IDS_PER_QUERY)
            ]
        found: set[int] = set()
        for selected in selections:
            for task in tasks_by_id(
                self.transport,
                project_id,
                include="id,predictions_model_versions",
                matching=[filters.has_prediction_of(model_version)],
                selected=selected,
            ):
                versions = str(task.get("predictions_model_versions") or "")
                # The filter matches substrings: check the versions exactly here, unless the
                # list is truncated (then trust the server's match).
                if len(versions) >= DM_TEXT_LIMIT or model_version in {
                    v.strip() for v in versions.split(",")
                }:
                    found.add(int(task["id"]))
        return found

    def use_predictions_of(self, project_id: int, model_version: str | None) -> None:
        """Annotators see `model_version`'s predictions (None: keep the project's choice), and
        tasks opened without one are sent to the connected ML backend; the labelling stream
        asks for the lowest prediction score first (Label Studio's uncertainty sampling)."""
        settings: dict[str, Any] = {
            "show_collab_predictions": True,
            "sampling": UNCERTAINTY_SAMPLING,
        }
        if model_version is not None:
            settings["model_version"] = model_version
        self.transport.request(
            "PATCH", f"/api/projects/{project_id}/", json_body=settings, repeatable=True
        )


def _encode(prediction: PredictionIn) -> dict[str, Any]:
    return {
        "task": prediction.task_id,
        "result": prediction.result,
        "score": prediction.score,
        "model_version": prediction.model_version,
    }
