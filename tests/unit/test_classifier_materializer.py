"""The checkpoint materializer against a real (local) ZenML artifact store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from tampering import code_payload, runs_code
from zenml.artifact_stores.local_artifact_store import LocalArtifactStore
from zenml.enums import ArtifactType
from zenml.materializers.materializer_registry import materializer_registry

from annotation_loop.errors import ArtifactError
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


def stored_checkpoint(artifact_store: LocalArtifactStore, name: str) -> str:
    """The URI of a small checkpoint saved as the loop saves one."""
    uri = f"{artifact_store.path}/checkpoint/{name}"
    artifact_store.makedirs(uri)
    checkpoint = ClassifierCheckpoint("efficientnet_lite0", ["a", "b"], 32, {"w": torch.ones(2)})
    ClassifierCheckpointMaterializer(uri, artifact_store=artifact_store).save(checkpoint)
    return uri


def load(artifact_store: LocalArtifactStore, uri: str) -> ClassifierCheckpoint:
    return ClassifierCheckpointMaterializer(uri, artifact_store=artifact_store).load(
        ClassifierCheckpoint
    )


def test_weights_that_would_run_code_are_refused_and_the_code_does_not_run(
    artifact_store: LocalArtifactStore, tmp_path: Path
) -> None:
    uri = stored_checkpoint(artifact_store, "pickle")
    marker = tmp_path / "code-ran"
    payload = code_payload(marker)
    (Path(uri) / "weights.pt").write_bytes(payload)

    with pytest.raises(ArtifactError, match=r"weights\.pt is not tensors as torch\.save writes"):
        load(artifact_store, uri)
    assert not marker.exists()
    assert runs_code(payload, marker)  # the payload is live: an unsafe load would run it


def test_weights_that_are_not_a_mapping_of_tensors_are_refused(
    artifact_store: LocalArtifactStore,
) -> None:
    uri = stored_checkpoint(artifact_store, "not-tensors")
    torch.save({"w": [1, 2, 3]}, Path(uri) / "weights.pt")  # loads with weights_only=True
    with pytest.raises(ArtifactError, match="not a mapping of names to tensors"):
        load(artifact_store, uri)


def test_a_checkpoint_folder_holding_another_file_is_refused(
    artifact_store: LocalArtifactStore,
) -> None:
    uri = stored_checkpoint(artifact_store, "extra")
    (Path(uri) / "model.pkl").write_bytes(b"anything")
    with pytest.raises(ArtifactError, match=r"holds 'model\.pkl', which an image checkpoint"):
        load(artifact_store, uri)


def test_a_malformed_checkpoint_config_is_refused_on_one_line(
    artifact_store: LocalArtifactStore,
) -> None:
    uri = stored_checkpoint(artifact_store, "config")
    config = Path(uri) / "checkpoint.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "image_size": "64; rm"}))
    with pytest.raises(ArtifactError, match=r"checkpoint\.json is malformed \(image_size") as info:
        load(artifact_store, uri)
    assert "\n" not in str(info.value)
