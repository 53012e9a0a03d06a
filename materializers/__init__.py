"""ZenML materializers for the loop's own artifact types.

Importing a materializer registers it with ZenML for its `ASSOCIATED_TYPES`.
"""

from materializers.annotation_snapshot_materializer import AnnotationSnapshotMaterializer
from materializers.classifier_materializer import ClassifierCheckpointMaterializer

__all__ = ["AnnotationSnapshotMaterializer", "ClassifierCheckpointMaterializer"]
