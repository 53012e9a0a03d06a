"""ZenML materializers for the loop's own artifact types.

Importing a materializer registers it with ZenML for its `ASSOCIATED_TYPES`.
"""

from materializers.classifier_materializer import ClassifierCheckpointMaterializer

__all__ = ["ClassifierCheckpointMaterializer"]
