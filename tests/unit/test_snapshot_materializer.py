"""The annotation snapshot materializer against a real (local) ZenML artifact store."""

import gzip
import json
from datetime import UTC, datetime

import pytest
from zenml.materializers.materializer_registry import materializer_registry

from annotation_loop.errors import ArtifactError
from annotation_loop.learning.annotations import AnnotationSnapshot, LabelledItem, MergeReport
from annotation_loop.quality.consensus import AnnotatorLabel
from annotation_loop.text.spans import Span
from materializers import AnnotationSnapshotMaterializer


def test_snapshot_round_trips_with_watermark_and_summary(artifact_store):
    assert materializer_registry[AnnotationSnapshot] is AnnotationSnapshotMaterializer
    snapshot = AnnotationSnapshot(
        project_id=3,
        task="image",
        labels=("cat", "dog"),
        items={
            7: LabelledItem(7, "etag:abc", "s3://b/batch_1/ü 1.png", "dog"),
            9: LabelledItem(9, "etag:def", "s3://b/batch_1/2.png", "cat"),
        },
        watermark=datetime(2026, 5, 1, 12, 30, 15, 123456, tzinfo=UTC),
        last_merge=MergeReport(fetched_tasks=4, added=2, cancelled=1, empty=1),
    )
    uri = f"{artifact_store.path}/snapshot/1"
    artifact_store.makedirs(uri)
    saver = AnnotationSnapshotMaterializer(uri, artifact_store=artifact_store)
    saver.save(snapshot)
    visualizations = saver.save_visualizations(snapshot)
    loaded = AnnotationSnapshotMaterializer(uri, artifact_store=artifact_store).load(
        AnnotationSnapshot
    )
    assert loaded == snapshot
    assert saver.extract_metadata(snapshot)["label_counts"] == {"cat": 1, "dog": 1}
    (summary_path,) = visualizations
    with artifact_store.open(summary_path, "r") as handle:
        summary = handle.read()
    assert "2 labelled items" in summary and "| dog | 1 |" in summary


def test_span_targets_round_trip(artifact_store):
    """NER targets (tuples of spans) are stored through the task type's encoding."""
    spans = (Span(0, 5, "person"), Span(15, 20, "geo-loc"))
    snapshot = AnnotationSnapshot(
        project_id=4,
        task="ner",
        labels=("geo-loc", "person"),
        items={
            1: LabelledItem(1, "md5:1", "Alice flew to Paris 😀", spans),
            2: LabelledItem(2, "md5:2", "nothing to see", ()),
        },
    )
    uri = f"{artifact_store.path}/snapshot/ner"
    artifact_store.makedirs(uri)
    AnnotationSnapshotMaterializer(uri, artifact_store=artifact_store).save(snapshot)
    loaded = AnnotationSnapshotMaterializer(uri, artifact_store=artifact_store).load(
        AnnotationSnapshot
    )
    assert loaded == snapshot
    assert loaded.label_counts() == {"geo-loc": 1, "person": 1}


def test_annotators_labels_and_undecided_tasks_round_trip(artifact_store):
    spans = (Span(0, 5, "person"),)
    other = (Span(0, 5, "geo-loc"),)
    by_three = (
        AnnotatorLabel("3", spans, confirmed=True),
        AnnotatorLabel("2", other),
        AnnotatorLabel("1", ()),
    )
    split = (AnnotatorLabel("1", spans), AnnotatorLabel("2", other))
    snapshot = AnnotationSnapshot(
        project_id=4,
        task="ner",
        labels=("geo-loc", "person"),
        items={1: LabelledItem(1, "md5:1", "Alice flew", spans, by_three, "reviewer", other)},
        undecided={2: LabelledItem(2, "md5:2", "Alice ran", None, split, "none")},
    )
    uri = f"{artifact_store.path}/snapshot/annotators"
    artifact_store.makedirs(uri)
    saver = AnnotationSnapshotMaterializer(uri, artifact_store=artifact_store)
    saver.save(snapshot)
    loaded = AnnotationSnapshotMaterializer(uri, artifact_store=artifact_store).load(
        AnnotationSnapshot
    )
    assert loaded == snapshot
    assert loaded.items[1].confirmed and isinstance(loaded.items[1].annotations[0].target, tuple)


def test_snapshots_from_before_task_types_load_as_image_snapshots(artifact_store):
    uri = f"{artifact_store.path}/snapshot/legacy"
    artifact_store.makedirs(uri)
    legacy = {
        "project_id": 5,
        "labels": ["cat", "dog"],
        "items": [{"task_id": 1, "uri": "s3://b/1.png", "content_hash": "md5:1", "label": "cat"}],
        "watermark": "2026-05-01T12:30:15+00:00",
        "last_merge": {"fetched_tasks": 1, "added": 1},
    }
    with artifact_store.open(f"{uri}/snapshot.json.gz", "wb") as handle:
        handle.write(gzip.compress(json.dumps(legacy).encode()))
    loaded = AnnotationSnapshotMaterializer(uri, artifact_store=artifact_store).load(
        AnnotationSnapshot
    )
    assert loaded.task == "image"
    assert loaded.items == {1: LabelledItem(1, "md5:1", "s3://b/1.png", "cat")}


def test_a_snapshot_folder_holding_a_file_the_loop_never_writes_is_refused(artifact_store):
    uri = f"{artifact_store.path}/snapshot/tampered"
    artifact_store.makedirs(uri)
    snapshot = AnnotationSnapshot(project_id=1, task="image", labels=("cat",))
    AnnotationSnapshotMaterializer(uri, artifact_store=artifact_store).save(snapshot)
    with artifact_store.open(f"{uri}/loader.py", "w") as handle:
        handle.write("print('hello')")
    with pytest.raises(ArtifactError, match=r"holds 'loader\.py', which an annotation snapshot"):
        AnnotationSnapshotMaterializer(uri, artifact_store=artifact_store).load(AnnotationSnapshot)


def test_a_snapshot_that_inflates_past_the_limit_is_refused_unread(artifact_store, monkeypatch):
    from materializers import annotation_snapshot_materializer as module

    uri = f"{artifact_store.path}/snapshot/bomb"
    artifact_store.makedirs(uri)
    # 4 MiB of spaces gzip to a few KB: a bomb at this (lowered) limit.
    with artifact_store.open(f"{uri}/snapshot.json.gz", "wb") as handle:
        handle.write(gzip.compress(b" " * (4 * 2**20) + b"{}"))
    monkeypatch.setattr(module, "MAX_SNAPSHOT_BYTES", 2**20)
    with pytest.raises(ArtifactError, match="inflates past 1 MiB"):
        AnnotationSnapshotMaterializer(uri, artifact_store=artifact_store).load(AnnotationSnapshot)


def test_a_snapshot_that_is_not_gzip_is_refused_on_one_line(artifact_store):
    uri = f"{artifact_store.path}/snapshot/plain"
    artifact_store.makedirs(uri)
    with artifact_store.open(f"{uri}/snapshot.json.gz", "wb") as handle:
        handle.write(b'{"items": []}')
    with pytest.raises(ArtifactError, match="is not gzip") as raised:
        AnnotationSnapshotMaterializer(uri, artifact_store=artifact_store).load(AnnotationSnapshot)
    assert "\n" not in str(raised.value)
