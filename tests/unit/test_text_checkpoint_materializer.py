"""The text checkpoint materializer against a real (local) ZenML artifact store."""

import json
import os
from pathlib import Path

import pytest
from tampering import code_payload, runs_code
from zenml.materializers.materializer_registry import materializer_registry

from annotation_loop.errors import ArtifactError
from annotation_loop.text.checkpoint import TextCheckpoint
from annotation_loop.text.classifier import predict_texts, train_text_classifier
from annotation_loop.text.examples import TextExample
from annotation_loop.text.pretrained import TextTrainConfig
from materializers import TextCheckpointMaterializer


def test_checkpoint_round_trips_and_predicts_the_same(artifact_store):
    assert materializer_registry[TextCheckpoint] is TextCheckpointMaterializer
    examples = [
        TextExample("a", "great fun", "fresh"),
        TextExample("b", "dull mess", "rotten"),
    ]
    config = TextTrainConfig(max_length=16, stride=4, epochs=1, batch_size=2)
    checkpoint, _ = train_text_classifier(examples, ["fresh", "rotten"], config, progress=False)
    uri = f"{artifact_store.path}/model/1"
    artifact_store.makedirs(uri)
    materializer = TextCheckpointMaterializer(uri, artifact_store=artifact_store)
    materializer.save(checkpoint)
    loaded = TextCheckpointMaterializer(uri, artifact_store=artifact_store).load(TextCheckpoint)
    assert loaded == checkpoint
    texts = [("x", "what great fun"), ("y", "a dull mess")]
    assert predict_texts(loaded, texts, progress=False) == predict_texts(
        checkpoint, texts, progress=False
    )
    metadata = materializer.extract_metadata(checkpoint)
    assert metadata["base_model"] == "minilm" and metadata["labels"] == ["fresh", "rotten"]


def stored_checkpoint(artifact_store, name):
    """The URI of a checkpoint saved as the loop saves one (its files need not be a model:
    the materializer stores them as bytes)."""
    checkpoint = TextCheckpoint(
        head="sequence_classification",
        base_model="minilm",
        labels=["fresh", "rotten"],
        max_length=16,
        stride=4,
        files={"config.json": b"{}", "model.safetensors": b"weights"},
    )
    uri = f"{artifact_store.path}/model/{name}"
    artifact_store.makedirs(uri)
    TextCheckpointMaterializer(uri, artifact_store=artifact_store).save(checkpoint)
    return uri


def name_files(uri, names):
    """Rewrites the checkpoint's list of its model files, as a tampered artifact would."""
    config = Path(uri) / "checkpoint.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "file_names": names}))


def load(artifact_store, uri):
    return TextCheckpointMaterializer(uri, artifact_store=artifact_store).load(TextCheckpoint)


@pytest.mark.parametrize(
    ("name", "outside"),
    [
        ("../../secret.txt", "secret.txt"),  # relative to files/: two levels up
        ("/{tmp}/secret.txt", "secret.txt"),  # absolute
        ("nested/../../../secret.txt", "secret.txt"),
    ],
)
def test_a_file_name_that_leaves_the_artifact_folder_is_refused(artifact_store, name, outside):
    uri = stored_checkpoint(artifact_store, "escape")
    secret = Path(uri).parent / outside  # beside the artifact folder, readable if joined
    secret.write_text("not for the model")
    name = name.format(tmp=str(Path(uri).parent).strip("/"))
    assert Path(os.path.normpath(Path(uri) / "files" / name)) == secret  # a real escape
    name_files(uri, ["config.json", name])
    with pytest.raises(ArtifactError, match="not a plain file name inside the folder"):
        load(artifact_store, uri)


def test_a_pickled_model_file_is_refused_and_its_code_does_not_run(artifact_store, tmp_path):
    uri = stored_checkpoint(artifact_store, "pickle")
    marker = tmp_path / "code-ran"
    payload = code_payload(marker)
    (Path(uri) / "files" / "pytorch_model.bin").write_bytes(payload)
    name_files(uri, ["config.json", "pytorch_model.bin"])
    with pytest.raises(ArtifactError, match=r"holds 'pytorch_model\.bin', which a text checkpoint"):
        load(artifact_store, uri)
    assert not marker.exists()
    assert runs_code(payload, marker)  # the payload is live: an unsafe load would run it


@pytest.mark.parametrize("where", ["", "files"])
def test_a_checkpoint_folder_holding_another_file_is_refused(artifact_store, where):
    uri = stored_checkpoint(artifact_store, f"extra-{where}")
    (Path(uri) / where / "modeling_evil.py").write_text("import os")
    with pytest.raises(ArtifactError, match=r"holds 'modeling_evil\.py'"):
        load(artifact_store, uri)


def test_an_unlisted_file_name_in_the_config_is_refused(artifact_store):
    uri = stored_checkpoint(artifact_store, "unlisted")
    name_files(uri, ["config.json", "custom_code.py"])
    with pytest.raises(ArtifactError, match=r"names 'custom_code\.py', which a text checkpoint"):
        load(artifact_store, uri)


def test_a_model_that_saves_a_file_checkpoints_do_not_store_is_refused_when_saved(
    artifact_store,
):
    checkpoint = TextCheckpoint(
        "sequence_classification", "x", ["a"], 16, 4, {"pytorch_model.bin": b"pickle"}
    )
    uri = f"{artifact_store.path}/model/bin"
    artifact_store.makedirs(uri)
    with pytest.raises(ArtifactError, match=r"wrote 'pytorch_model\.bin'.*safetensors"):
        TextCheckpointMaterializer(uri, artifact_store=artifact_store).save(checkpoint)
    assert artifact_store.listdir(uri) == []
