"""ZenML stores each artifact's data type by import path: every path an artifact class had
when a model version or run stored it must still load that class after the code moved."""

import pytest
from zenml.utils import source_utils

from annotation_loop.data.sync import SyncReport
from annotation_loop.data.task_index import TaskIndex
from annotation_loop.learning.annotations import AnnotationSnapshot
from annotation_loop.learning.pre_annotations import BatchPredictions
from annotation_loop.text.checkpoint import TextCheckpoint
from annotation_loop.vision.checkpoint import ClassifierCheckpoint


@pytest.mark.parametrize(
    ("stored_path", "cls"),
    [
        # Before the checkpoints had modules of their own.
        ("annotation_loop.vision.classifier.ClassifierCheckpoint", ClassifierCheckpoint),
        ("annotation_loop.text.pretrained.TextCheckpoint", TextCheckpoint),
        # Before the library was grouped into subpackages by concern.
        ("annotation_loop.annotations.AnnotationSnapshot", AnnotationSnapshot),
        ("annotation_loop.pre_annotations.BatchPredictions", BatchPredictions),
        ("annotation_loop.sync.SyncReport", SyncReport),
        ("annotation_loop.task_index.TaskIndex", TaskIndex),
    ],
)
def test_an_artifact_stored_under_an_old_path_still_loads(stored_path: str, cls: type) -> None:
    assert source_utils.load(stored_path) is cls
