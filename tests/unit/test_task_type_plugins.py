"""A task type that implements only the core interface: the registry and the typed name take
it; the demo's oracle and label review refuse it in one line, before doing anything."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import pytest
from pydantic import BaseModel

from annotation_loop.dev.oracle import OracleTask, label_with_truth
from annotation_loop.errors import ConfigurationError
from annotation_loop.learning.label_review import ReviewConfig, review_suggestions
from annotation_loop.task_types import (
    TASK_TYPES,
    ClassificationScores,
    Evaluation,
    Example,
    ItemListing,
    Prediction,
    SourceItem,
    TaskDefaults,
    TaskName,
    TaskType,
    demo_data_of,
    get_task_type,
    label_review_of,
    register_task_type,
)


class CoreMethods(TaskType):
    """The core's methods, and nothing else."""

    def label_config(self, labels: Sequence[str]) -> str:
        return "<View/>"

    def task_data(self, item: SourceItem, store: Any) -> dict[str, Any]:
        return {"audio": item.uri}

    def input_ref(self, data: Mapping[str, Any]) -> str:
        return str(data["audio"])

    def target_from_result(
        self, result: Sequence[dict[str, Any]], input_ref: str, labels: Sequence[str], where: str
    ) -> Any | None:
        return None

    def result_for_target(self, target: Any, input_ref: str) -> list[dict[str, Any]]:
        return []

    def iter_items(self, store: Any, batch: str) -> Iterator[ItemListing]:
        yield ItemListing(batch=batch)

    def load_inputs(
        self, store: Any, refs: Iterable[tuple[str, str]]
    ) -> Iterator[tuple[str, Any | None]]:
        yield from refs

    def train(
        self,
        examples: Sequence[Example],
        labels: Sequence[str],
        config: Mapping[str, Any],
        init: Any | None,
    ) -> tuple[Any, dict[str, Any]]:
        return None, {}

    def predict(
        self, model: Any, inputs: Iterable[tuple[str, Any]], batch_size: int
    ) -> tuple[list[Prediction], list[str]]:
        return [], []

    def evaluate(self, model: Any, examples: Sequence[Example]) -> Evaluation:
        raise NotImplementedError


class Audio(CoreMethods):
    """The core only: no demo dataset, no label review."""

    name = "audio"
    description = "audio classification"
    item_description = "WAV files"
    metrics_type = ClassificationScores
    promotion_metric = "accuracy"
    items_in_bucket = True
    train_config_type = dict
    defaults = TaskDefaults("Sounds", "sound_classifier", "sounds", ("bird", "car"))


@pytest.fixture
def audio() -> Iterator[TaskType]:
    task_type = Audio()
    register_task_type(task_type)
    yield task_type
    del TASK_TYPES[task_type.name]


class Config(BaseModel):
    task: TaskName


def test_a_core_only_task_type_is_registered_and_named(audio: TaskType) -> None:
    assert get_task_type("audio") is audio
    assert Config(task="audio").task == "audio"


def test_the_demo_refuses_a_task_type_without_demo_data_in_one_line(audio: TaskType) -> None:
    class Untouchable:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError(f"the oracle used Label Studio ({name}) before refusing")

    with pytest.raises(ConfigurationError) as error:
        tasks = [OracleTask(1, "a.wav", "s3://b/a.wav")]
        label_with_truth(Untouchable(), audio, tasks, {"a.wav": "bird"})
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("Task type 'audio' has no demo dataset (no seed_demo/same_target)")
    with pytest.raises(ConfigurationError, match="'audio' has no demo dataset"):
        demo_data_of(audio)


def test_label_review_refuses_a_task_type_without_it_in_one_line(audio: TaskType) -> None:
    with pytest.raises(ConfigurationError) as error:
        review_suggestions(audio, None, [], {}, "review", ReviewConfig())
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith("Task type 'audio' has no label review")
    with pytest.raises(ConfigurationError, match="'audio' has no label review"):
        label_review_of(audio)


def test_the_registry_refuses_class_attributes_left_out() -> None:
    class Sketch(CoreMethods):
        name = "sketch"
        description = "sketch classification"

    with pytest.raises(
        ConfigurationError,
        match="Sketch does not set item_description, metrics_type, promotion_metric, "
        "defaults, items_in_bucket, train_config_type: add them to its class",
    ):
        register_task_type(Sketch())
    assert "sketch" not in TASK_TYPES


def test_the_registry_refuses_an_undeclared_promotion_metric() -> None:
    class ByRecall(Audio):
        promotion_metric = "recall"

    with pytest.raises(
        ConfigurationError,
        match="promotes by 'recall', which ClassificationScores does not declare: "
        "use one of accuracy, macro_f1",
    ):
        register_task_type(ByRecall())
    assert "audio" not in TASK_TYPES


def test_the_registry_refuses_a_second_type_of_the_same_name() -> None:
    class Image(Audio):
        name = "image"

    with pytest.raises(ConfigurationError, match="named 'image', like ImageClassification"):
        register_task_type(Image())
    assert type(TASK_TYPES["image"]).__name__ == "ImageClassification"
