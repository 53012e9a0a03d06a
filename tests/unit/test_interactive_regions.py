"""Interactive predictions: NER's answer for a selected span, and how the ML backend answers
Label Studio's interactive `/predict`, with a fake tagger (the real one is trained in
test_tagger.py and answers through the real Label Studio in the integration tests)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from annotation_loop.ml_backend import ModelHolder, ServedModel, create_app
from annotation_loop.ml_backend.interactive import interactive_regions
from annotation_loop.task_types import get_task_type
from annotation_loop.task_types.capabilities import (
    InteractivePrediction,
    RegionError,
    interactive_prediction_of,
)
from annotation_loop.task_types.ner import NamedEntityRecognition, span_entity_type
from annotation_loop.text import tagger
from annotation_loop.text.spans import bio_tags

NER = NamedEntityRecognition()
TYPES = ("PER", "LOC")
TAGS = bio_tags(TYPES)  # O, B-PER, I-PER, B-LOC, I-LOC
TEXT = "Alice flew to New York"
WORDS = [(0, 5), (6, 10), (11, 13), (14, 17), (18, 22)]
PROJECT = "7.1717171717"


class FakeTagger:
    """What `word_tag_probabilities` reads of a tagger: its tags; the fake's probabilities
    say Alice is a person and New York a place."""

    labels = TAGS

    def word_probabilities(self, text: str) -> tuple[list[tuple[int, int]], np.ndarray]:
        assert text == TEXT
        rows = {
            "Alice": [0.1, 0.8, 0.0, 0.1, 0.0],
            "New": [0.2, 0.0, 0.0, 0.7, 0.1],
            "York": [0.2, 0.0, 0.1, 0.0, 0.7],
        }
        other = [0.9, 0.05, 0.0, 0.05, 0.0]
        return WORDS, np.array([rows.get(TEXT[a:b], other) for a, b in WORDS], dtype=np.float32)


@pytest.fixture(autouse=True)
def fake_tagger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        tagger, "word_tag_probabilities", lambda model, text: model.word_probabilities(text)
    )


def region(start: Any, end: Any, **extra: Any) -> dict[str, Any]:
    value = {"start": start, "end": end, "labels": ["PER"]}
    if isinstance(start, int) and isinstance(end, int):
        value["text"] = TEXT[start:end]
    return {
        "id": "r1",
        "from_name": "label",
        "to_name": "text",
        "type": "labels",
        "value": value,
        **extra,
    }


def test_ner_has_the_capability_and_classification_has_not() -> None:
    assert isinstance(interactive_prediction_of(NER), InteractivePrediction)
    assert interactive_prediction_of(get_task_type("image")) is None
    assert interactive_prediction_of(get_task_type("text")) is None


def test_a_span_gets_the_type_most_probable_over_its_words() -> None:
    probabilities = FakeTagger().word_probabilities(TEXT)[1]
    kind, score = span_entity_type(WORDS, probabilities, TAGS, (14, 22)) or ("", 0.0)
    assert kind == "LOC"  # B- and I- together: "York" is I-LOC
    assert score == pytest.approx(0.75)
    # A selection that cuts a word counts the word; the type is the best even when "O" wins.
    assert span_entity_type(WORDS, probabilities, TAGS, (2, 4)) == ("PER", pytest.approx(0.8))
    assert span_entity_type(WORDS, probabilities, TAGS, (6, 10)) == ("PER", pytest.approx(0.05))
    assert span_entity_type(WORDS, probabilities, TAGS, (5, 6)) is None  # a space: no word


def test_ner_answers_a_span_on_the_same_region() -> None:
    answer = NER.predict_region(FakeTagger(), TEXT, region(14, 22))
    assert answer == {
        "id": "r1",
        "from_name": "label",
        "to_name": "text",
        "type": "labels",
        "value": {"start": 14, "end": 22, "text": "New York", "labels": ["LOC"]},
        "score": pytest.approx(0.75),
    }


def test_ner_leaves_other_regions_alone() -> None:
    assert NER.predict_region(FakeTagger(), TEXT, region(0, 5, type="choices")) is None
    assert NER.predict_region(FakeTagger(), TEXT, region(0, 5, from_name="other")) is None


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (region(None, 5), "no character offsets"),
        (region("0", 5), "no character offsets"),
        ({"id": "r1", "from_name": "label", "type": "labels"}, "no character offsets"),
        (region(3, 99), "not a non-empty range of the 22-character text"),
        (region(5, 5), "not a non-empty range"),
        (region(5, 6), "covers no word"),
        ({**region(0, 5), "value": {"start": 0, "end": 5, "text": "Bob"}}, "task.s text changed"),
    ],
)
def test_ner_refuses_a_region_it_cannot_use(bad: dict[str, Any], message: str) -> None:
    with pytest.raises(RegionError, match=message) as error:
        NER.predict_region(FakeTagger(), TEXT, bad)
    assert "\n" not in str(error.value)


def test_interactive_requests_are_told_by_their_context() -> None:
    assert interactive_regions(None) is None
    assert interactive_regions({"login": None, "password": None, "context": None}) is None
    assert interactive_regions({"context": {"project_credentials_login": "x"}}) is None
    assert interactive_regions({"context": {"result": "nonsense"}}) == []
    assert interactive_regions({"context": {"result": [region(0, 5)]}}) == [region(0, 5)]


class StaticSource:
    def __init__(self, served: ServedModel) -> None:
        self.served = served

    def production_version(self) -> str:
        return "1"

    def load(self, version: str) -> ServedModel:
        return self.served


def backend(served: ServedModel) -> TestClient:
    return TestClient(create_app(ModelHolder(StaticSource(served)), None, 7, None))


def interactive_request(
    served: ServedModel, regions: list[Any], data: dict[str, Any] | None = None
) -> dict[str, Any]:
    """`/predict`'s body as Label Studio 1.23's interactive-annotating sends it."""
    return {
        "tasks": [{"id": 3, "data": data or {"text": TEXT}, "drafts": [], "predictions": []}],
        "project": PROJECT,
        "label_config": served.task_type.label_config(served.labels),
        "params": {"login": None, "password": None, "context": {"result": regions}},
    }


TAGGER = ServedModel("tweet_tagger:4", NER, TYPES, FakeTagger())


def test_the_backend_answers_each_usable_region(caplog: pytest.LogCaptureFixture) -> None:
    regions = [region(0, 5), region(None, 5), region(14, 22, id="r2"), "junk"]
    with caplog.at_level(logging.INFO, logger="annotation_loop.ml_backend"):
        response = backend(TAGGER).post("/predict", json=interactive_request(TAGGER, regions))
    assert response.status_code == 200
    (prediction,) = response.json()["results"]
    assert prediction["model_version"] == "tweet_tagger:4"
    assert [(r["id"], r["value"]["labels"]) for r in prediction["result"]] == [
        ("r1", ["PER"]),
        ("r2", ["LOC"]),
    ]
    assert prediction["score"] == pytest.approx((0.8 + 0.75) / 2)
    assert "Skipped a region of task 3: Region 'r1' has no character offsets" in caplog.text
    assert "Skipped a region of task 3: 'junk' is not a result object" in caplog.text
    assert "Answered 2 of 4 regions of task 3 interactively with tweet_tagger:4" in caplog.text


def test_no_answer_without_the_capability_or_a_usable_region(
    caplog: pytest.LogCaptureFixture,
) -> None:
    classifier = ServedModel("review_classifier:1", get_task_type("text"), ("a", "b"), None)
    with caplog.at_level(logging.INFO, logger="annotation_loop.ml_backend"):
        response = backend(classifier).post(
            "/predict", json=interactive_request(classifier, [region(0, 5)])
        )
        nothing = backend(TAGGER).post("/predict", json=interactive_request(TAGGER, []))
    assert response.status_code == 200 and response.json() == {"results": [[]]}
    assert "text classification (task type 'text') answers no region" in caplog.text
    assert nothing.status_code == 200 and nothing.json() == {"results": [[]]}


def test_a_task_without_its_input_gets_no_interactive_answer(
    caplog: pytest.LogCaptureFixture,
) -> None:
    body = interactive_request(TAGGER, [region(0, 5)], data={"review": TEXT})
    response = backend(TAGGER).post("/predict", json=body)
    assert response.json() == {"results": [[]]}
    assert "Task 3 has no model input in its data" in caplog.text
