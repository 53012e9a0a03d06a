from datetime import UTC, datetime
from pathlib import Path
from uuid import uuid4

import pytest
from PIL import Image
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


@pytest.fixture(autouse=True)
def pixel_limit_per_test(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a store's images sets PIL's process-wide pixel limit to the store's; a test
    that reads with a tiny limit must not leave it for the tests after it."""
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", Image.MAX_IMAGE_PIXELS)
