"""The speech transcription loop against the real Label Studio: espeak-ng demo files, the
oracle's segments with transcripts, a pocketsphinx version that pre-annotates the next batch
(regions from VAD, with transcripts and scores), then a CTC model fine-tuned from a tiny
random wav2vec2 (the same code as a hub model, offline)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from support import pre_annotations, project_tasks
from zenml.client import Client

from annotation_loop import app
from annotation_loop.app import training
from annotation_loop.app.demo import label_batch_with_oracle
from annotation_loop.configs import config_path, load_training_parameters
from annotation_loop.data.storage import ObjectStore
from annotation_loop.labelstudio import LabelStudioClient
from annotation_loop.task_types import get_task_type
from annotation_loop.task_types.capabilities import demo_data_of

pytestmark = pytest.mark.integration

BATCH_SIZE = 6
TINY_CTC = {"base_model": "random-tiny", "epochs": 2, "batch_size": 4, "learning_rate": 0.003}


def use_train_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, train_config: dict) -> None:
    """The next `app.train` reads configs/transcription/training.yaml with this train_config."""
    document = yaml.safe_load(config_path("transcription", "training").read_text())
    document["parameters"]["train_config"] |= train_config
    path = tmp_path / "training.yaml"
    path.write_text(yaml.safe_dump(document))
    monkeypatch.setattr(
        training, "load_training_parameters", lambda task: load_training_parameters(task, path)
    )


def test_the_transcription_loop_end_to_end(cloud_settings, monkeypatch, tmp_path):
    settings = cloud_settings("local", task="transcription")
    task_type = get_task_type("transcription")
    store = ObjectStore(settings.data_source("local"))
    store.ensure_bucket()
    truth = demo_data_of(task_type).seed_demo(store, batches=2, batch_size=BATCH_SIZE, seed=3)
    client = LabelStudioClient(
        settings.label_studio_url, settings.label_studio_api_key.get_secret_value()
    )

    # No model version yet: the pipeline syncs the batch without pre-annotations.
    synced = app.infer("local", settings, rerun=False)
    assert synced.batch == "batch_1" and len(synced.tasks) == BATCH_SIZE
    assert synced.model_version is None
    project_id = client.get_or_create_project(
        settings.project_name, task_type.label_config(settings.labels)
    )
    tasks = project_tasks(settings, project_id)
    assert {Path(t["data"]["key"]).suffix for t in tasks} == {".wav", ".flac", ".ogg", ".mp3"}
    assert all(t["data"]["audio"] for t in tasks)

    label_batch_with_oracle(client, settings, "local", synced, truth)
    baseline = app.train("local", settings, rerun=True)  # base_model: pocketsphinx
    assert baseline.model_version == "1" and baseline.promoted is True
    assert baseline.metric == "word_accuracy"
    logged = Client().get_model_version(settings.model_name, "1").run_metadata["validation"]
    # One validation file: its WER may pass 1 (insertions), the promotion score may not.
    assert logged["wer"] >= 0 and logged["cer"] >= 0 and logged["n_examples"] >= 1
    assert logged["word_accuracy"] == pytest.approx(max(0.0, 1 - logged["wer"]))

    inferred = app.infer("local", settings, rerun=True)
    assert inferred.batch == "batch_2" and len(inferred.predictions) == BATCH_SIZE
    by_id = {t["id"]: t for t in project_tasks(settings, project_id)}
    for batch_task in inferred.tasks:
        (prediction,) = pre_annotations(by_id[batch_task.task_id])
        assert prediction["model_version"] == f"{settings.model_name}:1"
        assert 0 < prediction["score"] <= 1
        regions = {r["id"]: {} for r in prediction["result"]}
        for result in prediction["result"]:
            regions[result["id"]][result["type"]] = result
        true_segments = truth[by_id[batch_task.task_id]["data"]["key"]]
        assert len(regions) == len(true_segments), "one VAD region per spoken sentence"
        for region in regions.values():
            label, text = region["labels"], region["textarea"]
            assert label["value"]["labels"] == ["Speech"] and 0 < label["score"] <= 1
            assert 0 <= label["value"]["start"] < label["value"]["end"]
            assert text["value"]["start"] == label["value"]["start"]
            assert isinstance(text["value"]["text"][0], str)

    report = label_batch_with_oracle(client, settings, "local", inferred, truth)
    assert report.accepted + report.corrected == BATCH_SIZE
    use_train_config(monkeypatch, tmp_path, TINY_CTC)
    fine_tuned = app.train("local", settings, rerun=True)
    assert fine_tuned.model_version == "2" and fine_tuned.labelled_items == 2 * BATCH_SIZE
    version = Client().get_model_version(settings.model_name, "2")
    assert version.run_metadata["validation"]["wer"] >= 0
    assert version.run_metadata["training"]["recogniser"] == "ctc"
