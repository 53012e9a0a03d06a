"""The checkpoint materializer against a real (local) ZenML artifact store."""

from __future__ import annotations

import torch
from zenml.artifact_stores.local_artifact_store import LocalArtifactStore
from zenml.enums import ArtifactType
from zenml.materializers.materializer_registry import materializer_registry

from annotation_loop.vision.backbones import build_classifier
from annotation_loop.vision.checkpoint import ClassifierCheckpoint
from materializers import ClassifierCheckpointMaterializer


def test_zenml_picks_this_materializer_for_checkpoints() -> None:
    assert materializer_registry[ClassifierCheckpoint] is ClassifierCheckpointMaterializer
    assert ClassifierCheckpointMaterializer.ASSOCIATED_ARTIFACT_TYPE == ArtifactType.MODEL


def test_checkpoint_round_trips_through_the_artifact_store(
    artifact_store: LocalArtifactStore,
) -> None:
    labels = ["cat", "dog", "bird"]
    model = build_classifier("efficientnet_lite0", len(labels), 64)  # random head
    checkpoint = ClassifierCheckpoint("efficientnet_lite0", labels, 64, model.state_dict())
    uri = f"{artifact_store.path}/checkpoint/1"
    artifact_store.makedirs(uri)  # as ZenML does before calling save()

    saver = ClassifierCheckpointMaterializer(uri, artifact_store=artifact_store)
    saver.validate_save_type_compatibility(ClassifierCheckpoint)
    saver.save(checkpoint)
    metadata = saver.extract_metadata(checkpoint)
    loaded = ClassifierCheckpointMaterializer(uri, artifact_store=artifact_store).load(
        ClassifierCheckpoint
    )

    assert sorted(artifact_store.listdir(uri)) == ["checkpoint.json", "weights.pt"]
    assert (loaded.arch, loaded.labels, loaded.image_size) == ("efficientnet_lite0", labels, 64)
    assert loaded.state_dict.keys() == checkpoint.state_dict.keys()
    assert all(torch.equal(loaded.state_dict[k], v) for k, v in checkpoint.state_dict.items())
    images = torch.randn(2, 3, 64, 64)
    with torch.inference_mode():
        assert torch.equal(loaded.build_module()(images), checkpoint.build_module()(images))
    assert metadata == {
        "arch": "efficientnet_lite0",
        "labels": labels,
        "image_size": 64,
        "num_parameters": sum(p.numel() for p in model.parameters()),
    }
