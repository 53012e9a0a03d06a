"""Fine-tuning a CTC recogniser: the training code on a tiny random wav2vec2, its checkpoint
through the materializer, and the one line a hub id gets offline."""

import pytest
from zenml.materializers.materializer_registry import materializer_registry

from annotation_loop.audio.checkpoint import TranscriptionCheckpoint
from annotation_loop.audio.demo_data import encode, speech_file
from annotation_loop.audio.train_config import TranscriptionTrainConfig
from annotation_loop.errors import ConfigurationError
from annotation_loop.task_types import Example, get_task_type
from materializers import TranscriptionCheckpointMaterializer

TINY = {"base_model": "random-tiny", "epochs": 6, "batch_size": 4, "learning_rate": 3e-3}


@pytest.fixture(scope="module")
def examples():
    files = []
    for i, (sentences, voice) in enumerate(
        [(["great fun", "a dull mess"], "en-us+klatt2"), (["loved it"], "en-us+f2")]
    ):
        samples, rate, truth = speech_file(sentences, voice, 190, "Speech")
        files.append(Example(f"f{i}", encode(samples, rate, "WAV", "PCM_16"), truth))
    return files


@pytest.fixture(scope="module")
def trained(examples):
    return get_task_type("transcription").train(examples, ["Speech"], TINY, init=None)


def test_tiny_ctc_training_lowers_the_loss(trained):
    checkpoint, report = trained
    assert checkpoint.recogniser == "ctc" and checkpoint.speech_label == "Speech"
    assert report["clips"] == 3 and report["examples"] == 2 and report["device"] == "cpu"
    assert report["final_loss"] < report["first_loss"]
    assert report["items_per_second"] > 0 and report["audio_seconds_per_second"] > 0


def test_the_checkpoint_round_trips_and_transcribes_the_same(trained, examples, artifact_store):
    checkpoint, _ = trained
    assert materializer_registry[TranscriptionCheckpoint] is TranscriptionCheckpointMaterializer
    uri = f"{artifact_store.path}/model/1"
    artifact_store.makedirs(uri)
    TranscriptionCheckpointMaterializer(uri, artifact_store=artifact_store).save(checkpoint)
    loaded = TranscriptionCheckpointMaterializer(uri, artifact_store=artifact_store).load(
        TranscriptionCheckpoint
    )
    assert loaded == checkpoint and "model.safetensors" in loaded.files
    task_type = get_task_type("transcription")
    inputs = [(e.key, e.input) for e in examples]
    before, _ = task_type.predict(checkpoint, inputs, batch_size=2)
    after, _ = task_type.predict(loaded, inputs, batch_size=2)
    assert [p.target for p in after] == [p.target for p in before]
    assert all(0 < p.score <= 1 and p.embedding.shape == (32,) for p in after)
    # Continuing from it trains the same model further.
    _, report = task_type.train(examples, ["Speech"], TINY | {"epochs": 1}, init=loaded)
    assert report["first_loss"] < trained[1]["first_loss"]


def test_pocketsphinx_is_a_version_with_nothing_to_fit(examples, artifact_store):
    checkpoint, report = get_task_type("transcription").train(
        examples, ["Speech"], {"base_model": "pocketsphinx"}, init=None
    )
    assert checkpoint == TranscriptionCheckpoint("pocketsphinx", "pocketsphinx", "Speech")
    assert report["examples"] == 2
    uri = f"{artifact_store.path}/model/ps"
    artifact_store.makedirs(uri)
    TranscriptionCheckpointMaterializer(uri, artifact_store=artifact_store).save(checkpoint)
    loaded = TranscriptionCheckpointMaterializer(uri, artifact_store=artifact_store).load(
        TranscriptionCheckpoint
    )
    assert loaded == checkpoint


def test_a_hub_model_offline_is_one_line_naming_the_setting(examples):
    # The tests run with HF_HUB_OFFLINE=1 (tests/conftest.py).
    with pytest.raises(ConfigurationError) as raised:
        get_task_type("transcription").train(
            examples, ["Speech"], {"base_model": "facebook/wav2vec2-base-960h"}, init=None
        )
    message = str(raised.value)
    assert (
        "\n" not in message and "train_config.base_model" in message and "pocketsphinx" in message
    )


def test_invalid_configs_are_refused():
    with pytest.raises(ConfigurationError, match="epochs"):
        TranscriptionTrainConfig(epochs=0)
