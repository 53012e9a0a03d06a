"""Which content a Label Studio project already holds, kept up to date incrementally.

A sync must know, for every listed item, whether a task with its content exists. Listing
a whole project costs about 0.3 ms per task on Label Studio, so the index is stored as an
artifact by each sync and the next one only asks for the tasks created since (ids above
the newest it covers). If any task it covers was deleted meanwhile (fewer tasks up to its
newest id than it counted), it is rebuilt from scratch, so a stale entry never hides an
item that needs a task.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import NamedTuple

from pydantic import BaseModel, Field

from annotation_loop.labelstudio import LabelStudioClient, TaskRef

logger = logging.getLogger(__name__)


class IndexedTask(NamedTuple):
    """A tuple, not a model: an index holds one per task, and a model costs ~6x the memory."""

    id: int
    uri: str
    batch: str


class TaskIndex(BaseModel):
    label_studio_url: str
    project_id: int
    max_task_id: int = 0  # the newest task covered
    task_count: int = 0  # tasks covered, with or without a content hash
    tasks: dict[str, IndexedTask] = Field(default_factory=dict)  # content hash -> oldest task

    def extend(self, refs: Iterable[TaskRef]) -> None:
        """Adds tasks; a content hash already present keeps its older task."""
        # Pydantic's validating setters cost ~6 us each: at 50k new tasks, setting the
        # counters per task was a third of a second of a sync, so they are set once.
        max_task_id, count = self.max_task_id, self.task_count
        for ref in refs:
            max_task_id = max(max_task_id, ref.id)
            count += 1
            if ref.content_hash and ref.content_hash not in self.tasks:
                self.tasks[ref.content_hash] = IndexedTask(id=ref.id, uri=ref.uri, batch=ref.batch)
        self.max_task_id, self.task_count = max_task_id, count

    def batches(self) -> set[str]:
        return {task.batch for task in self.tasks.values()}


def refresh_task_index(
    client: LabelStudioClient, project_id: int, previous: TaskIndex | None
) -> TaskIndex:
    """`previous` plus the tasks created since; a full listing when there is no usable
    previous index (another server or project) or tasks were deleted since."""
    index = TaskIndex(label_studio_url=client.url, project_id=project_id)
    if previous is not None and (previous.label_studio_url, previous.project_id) == (
        client.url,
        project_id,
    ):
        if client.count_tasks_up_to(project_id, previous.max_task_id) == previous.task_count:
            index = previous.model_copy(deep=True)
        else:
            logger.info("Tasks were deleted from project %d: listing all again", project_id)
    index.extend(client.iter_task_refs(project_id, after_id=index.max_task_id))
    return index
