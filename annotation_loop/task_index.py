"""Where `TaskIndex` lived before the layout by concern: ZenML records each artifact's type
by import path, so artifacts stored then still load from here."""

from annotation_loop.data.task_index import TaskIndex

__all__ = ["TaskIndex"]
