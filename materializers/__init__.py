"""ZenML materializers for the loop's own artifact types.

Importing a materializer registers it with ZenML for its `ASSOCIATED_TYPES`; the training
step's model output is typed `Any`, so ZenML picks one of these by the value's type.
"""

from materializers.annotation_snapshot_materializer import AnnotationSnapshotMaterializer
from materializers.batch_predictions_materializer import BatchPredictionsMaterializer
from materializers.classifier_materializer import ClassifierCheckpointMaterializer
from materializers.detection_checkpoint import DetectorCheckpointMaterializer
from materializers.sync_report_materializer import SyncReportMaterializer
from materializers.task_index_materializer import TaskIndexMaterializer
from materializers.text_checkpoint_materializer import TextCheckpointMaterializer
from materializers.transcription_checkpoint import TranscriptionCheckpointMaterializer

__all__ = [
    "AnnotationSnapshotMaterializer",
    "BatchPredictionsMaterializer",
    "ClassifierCheckpointMaterializer",
    "DetectorCheckpointMaterializer",
    "SyncReportMaterializer",
    "TaskIndexMaterializer",
    "TextCheckpointMaterializer",
    "TranscriptionCheckpointMaterializer",
]
