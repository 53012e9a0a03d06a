"""configs/<task>/*.yaml are validated whole before anything runs: a typo fails at start, on
one line that names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from annotation_loop.configs import (
    InferenceParameters,
    TrainingParameters,
    config_path,
    load_parameters,
    load_training_parameters,
)
from annotation_loop.errors import ConfigurationError
from annotation_loop.task_types import TASK_TYPES, get_task_type


@pytest.mark.parametrize("task", list(TASK_TYPES))
def test_the_shipped_configs_load_and_name_the_task_types_model(task: str) -> None:
    training = load_training_parameters(task)
    assert training.model.name == get_task_type(task).defaults.model_name
    assert task in training.model.tags
    inference = load_parameters(config_path(task, "inference"), InferenceParameters)
    assert inference.batch_size > 0


def edited(tmp_path: Path, task: str, edit: dict[str, object]) -> Path:
    """The task's training.yaml with `edit` merged into its parameters (dotted keys)."""
    document = yaml.safe_load(config_path(task, "training").read_text())
    for dotted, value in edit.items():
        *parents, key = dotted.split(".")
        node = document["parameters"]
        for parent in parents:
            node = node[parent]
        node[key] = value
    path = tmp_path / "training.yaml"
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.mark.parametrize(
    ("task", "edit", "key"),
    [
        ("image", {"validation_fractoin": 0.2}, "parameters.validation_fractoin"),
        ("image", {"validation_fraction": 1.5}, "parameters.validation_fraction"),
        ("image", {"label_review.fold": 5}, "parameters.label_review.fold"),
        ("image", {"model.tag": ["x"]}, "parameters.model.tag"),
        ("image", {"train_config.epoch": 3}, "parameters.train_config.epoch"),
        ("text", {"train_config.image_size": 112}, "parameters.train_config.image_size"),
        ("ner", {"train_config.epochs": "many"}, "parameters.train_config.epochs"),
    ],
)
def test_a_wrong_key_or_value_fails_on_one_line_naming_it(
    tmp_path: Path, task: str, edit: dict[str, object], key: str
) -> None:
    path = edited(tmp_path, task, edit)
    with pytest.raises(ConfigurationError) as error:
        load_training_parameters(task, path)
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {key}: ")


def test_an_unknown_ranking_strategy_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "inference.yaml"
    path.write_text("parameters:\n  active_learning:\n    strategy: newest-first\n")
    with pytest.raises(ConfigurationError, match=r"parameters\.active_learning\.strategy: "):
        load_parameters(path, InferenceParameters)


def test_only_parameters_are_read(tmp_path: Path) -> None:
    path = tmp_path / "training.yaml"
    path.write_text("paramters:\n  validation_fraction: 0.2\n")
    with pytest.raises(ConfigurationError, match="unknown top-level key 'paramters'"):
        load_parameters(path, TrainingParameters)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("LOOP_MAX_ITEM_BYTES", "-1", "LOOP_MAX_ITEM_BYTES='-1': Input should be greater than 0"),
        ("LOOP_OVERLAP_ANNOTATORS", "three", "LOOP_OVERLAP_ANNOTATORS='three': Input should be"),
        # A check across settings names both of its variables.
        ("LOOP_OVERLAP_SHARE", "0.01", "anchoring_share (0.05) must not exceed overlap_share"),
    ],
)
def test_a_bad_setting_is_one_line_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    from annotation_loop.settings import Settings

    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_environment()
    assert message in str(raised.value)
    assert "\n" not in str(raised.value) and "Value error" not in str(raised.value)
