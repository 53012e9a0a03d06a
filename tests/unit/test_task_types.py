"""The task types' registry and typed name, and their Label Studio side: label configs and
result conversions, both ways."""

import xml.etree.ElementTree as ET

import click
import pytest
from click.testing import CliRunner
from pydantic import BaseModel, ValidationError

from annotation_loop.errors import ConfigurationError, UnknownLabelError
from annotation_loop.task_types import (
    TASK_TYPES,
    DemoData,
    LabelReview,
    TaskName,
    get_task_type,
    task_name,
)
from annotation_loop.text.spans import Span

TEXT = "Alice flew from Paris to 東京 😀 on Monday"


BUILT_IN = "image, text, ner, transcription, detection"


def test_the_built_in_task_types_are_registered_with_their_capabilities():
    assert list(TASK_TYPES) == BUILT_IN.split(", ")
    for task_type in TASK_TYPES.values():
        assert isinstance(task_type, DemoData)
    # Confident learning needs classes: free-text transcripts have none to dispute.
    reviewed = {name for name, t in TASK_TYPES.items() if isinstance(t, LabelReview)}
    assert reviewed == {"image", "text", "ner", "detection"}
    with pytest.raises(ConfigurationError, match=f"LOOP_TASK to one of {BUILT_IN}"):
        get_task_type("audio")


class PipelineConfig(BaseModel):
    task: TaskName


def test_a_task_name_in_a_pydantic_model_is_checked_against_the_registry():
    assert PipelineConfig(task="ner").task == "ner"
    with pytest.raises(ValidationError) as error:
        PipelineConfig(task="audio")
    (problem,) = error.value.errors()
    assert problem["loc"] == ("task",)
    assert problem["msg"].endswith(f"unknown task type 'audio': use one of {BUILT_IN}")


def test_a_task_name_option_in_click_is_a_usage_error_when_unknown():
    @click.command()
    @click.option("--task", type=task_name, required=True)
    def command(task: str) -> None:
        click.echo(f"task={task}")

    assert CliRunner().invoke(command, ["--task", "text"]).output == "task=text\n"
    unknown = CliRunner().invoke(command, ["--task", "audio"])
    assert unknown.exit_code == 2
    assert f"unknown task type 'audio': use one of {BUILT_IN}" in unknown.output


@pytest.mark.parametrize(
    ("task", "control", "object_tag", "value"),
    [
        ("image", "Choices", "Image", "$image"),
        ("text", "Choices", "Text", "$text"),
        ("ner", "Labels", "Text", "$text"),
    ],
)
def test_label_configs_list_every_label_once_and_escape(task, control, object_tag, value):
    labels = ["cat", 'big "dog"', "a&b"]
    root = ET.fromstring(get_task_type(task).label_config(labels))
    options = [o.attrib["value"] for o in root.find(control)]
    assert options == labels
    obj = root.find(object_tag)
    assert obj.attrib["value"] == value
    assert root.find(control).attrib["toName"] == obj.attrib["name"]


@pytest.mark.parametrize("task", ["image", "text", "ner"])
@pytest.mark.parametrize("labels", [[], ["a", "a"]])
def test_bad_label_lists_are_rejected(task, labels):
    with pytest.raises(ConfigurationError):
        get_task_type(task).label_config(labels)


@pytest.mark.parametrize("task", ["image", "text"])
def test_choice_results_round_trip_and_unknown_label(task):
    unit = get_task_type(task)
    result = unit.result_for_target("7", "ref")
    assert unit.target_from_result(result, "ref", ["7", "8"], "task 1") == "7"
    assert unit.target_from_result([], "ref", ["7"], "task 1") is None
    with pytest.raises(UnknownLabelError, match=r"task 1.*LOOP_LABELS"):
        unit.target_from_result(unit.result_for_target("9", "ref"), "ref", ["7", "8"], "task 1")


def test_span_results_round_trip_and_no_spans_is_a_label():
    ner = get_task_type("ner")
    spans = (Span(0, 5, "person"), Span(16, 21, "geo-loc"), Span(25, 27, "geo-loc"))
    result = ner.result_for_target(spans, TEXT)
    assert [r["value"]["text"] for r in result] == ["Alice", "Paris", "東京"]
    back = ner.target_from_result(result, TEXT, ["geo-loc", "person"], "task 3")
    assert back == spans
    assert ner.decode_target(ner.encode_target(back)) == spans
    assert ner.target_from_result([], TEXT, ["person"], "task 3") == ()


def test_span_targets_compare_without_scores():
    ner = get_task_type("ner")
    assert ner.same_target((Span(0, 5, "person", 0.9),), (Span(0, 5, "person"),))
    assert not ner.same_target((Span(0, 5, "person"),), (Span(0, 5, "geo-loc"),))
