from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from zenml.artifact_stores.local_artifact_store import (
    LocalArtifactStore,
    LocalArtifactStoreConfig,
)
from zenml.enums import StackComponentType


@pytest.fixture
def artifact_store(tmp_path: Path) -> LocalArtifactStore:
    now = datetime.now(UTC)
    return LocalArtifactStore(
        name="test",
        id=uuid4(),
        config=LocalArtifactStoreConfig(path=str(tmp_path)),
        flavor="local",
        type=StackComponentType.ARTIFACT_STORE,
        user=None,
        created=now,
        updated=now,
    )
