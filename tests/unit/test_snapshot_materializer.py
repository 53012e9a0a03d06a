"""The annotation snapshot materializer against a real (local) ZenML artifact store."""

from datetime import UTC, datetime

from zenml.materializers.materializer_registry import materializer_registry

from annotation_loop.annotations import AnnotationSnapshot, LabelledItem, MergeReport
from materializers import AnnotationSnapshotMaterializer


def test_snapshot_round_trips_with_watermark_and_summary(artifact_store):
    assert materializer_registry[AnnotationSnapshot] is AnnotationSnapshotMaterializer
    snapshot = AnnotationSnapshot(
        project_id=3,
        labels=("cat", "dog"),
        items={
            7: LabelledItem(7, "s3://b/batch_1/ü 1.png", "etag:abc", "dog"),
            9: LabelledItem(9, "s3://b/batch_1/2.png", "etag:def", "cat"),
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
