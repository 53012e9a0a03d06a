"""The declared validation metrics the task types' `evaluate` reports: the scores a task type
may promote by, and the JSON that is logged on the model version."""

from __future__ import annotations

import json

import pytest

from annotation_loop.errors import ConfigurationError
from annotation_loop.learning.classification_metrics import compute_metrics
from annotation_loop.task_types import ClassificationScores, EntityScores, get_task_type
from annotation_loop.task_types.choices import classification_evaluation
from annotation_loop.task_types.ner import entity_evaluation
from annotation_loop.text.entity_metrics import entity_metrics
from annotation_loop.text.spans import Span


def test_every_task_type_promotes_by_a_declared_score():
    assert ClassificationScores.score_names() == ("accuracy", "macro_f1")
    assert EntityScores.score_names() == ("precision", "recall", "f1")
    for task in ("image", "text"):
        assert get_task_type(task).metrics_type is ClassificationScores
    assert get_task_type("ner").metrics_type is EntityScores


def test_error_rates_are_logged_but_never_promoted_by():
    from annotation_loop.task_types.transcription import TranscriptionScores

    assert TranscriptionScores.score_names() == ("word_accuracy",)
    with pytest.raises(ConfigurationError, match="no score 'wer'"):
        TranscriptionScores.model_construct(wer=0.1).score("wer")


def test_classification_evaluation_declares_its_scores_and_logs_them_as_json():
    metrics = compute_metrics(
        ["cat", "cat", "dog", "dog", "bird"],
        ["cat", "dog", "dog", "dog", "cat"],
        ["cat", "dog", "bird"],
    )
    evaluation = classification_evaluation(metrics)
    scores = evaluation.metrics
    assert isinstance(scores, ClassificationScores)
    assert evaluation.score("accuracy") == pytest.approx(3 / 5)
    assert evaluation.score("macro_f1") == pytest.approx((0.5 + 0.8 + 0.0) / 3)
    assert scores.per_class["dog"].recall == 1.0
    assert scores.per_class["bird"].support == 1
    logged = json.loads(json.dumps(scores.model_dump()))
    assert set(logged) == {
        "n_examples",
        "accuracy",
        "macro_f1",
        "labels",
        "per_class",
        "confusion_matrix",
    }
    assert logged["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 0]]
    assert logged["per_class"]["cat"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2}
    assert evaluation.figure.size[0] > 0
    with pytest.raises(ConfigurationError, match="ClassificationScores has no score 'labels'"):
        evaluation.score("labels")


def test_entity_evaluation_declares_its_scores_and_logs_them_as_json():
    metrics = entity_metrics(
        [[Span(0, 5, "PER"), Span(10, 15, "LOC")]],
        [[Span(0, 5, "PER"), Span(10, 14, "LOC")]],
        ["LOC", "PER"],
    )
    evaluation = entity_evaluation(metrics)
    assert isinstance(evaluation.metrics, EntityScores)
    assert evaluation.score("f1") == pytest.approx(0.5)
    assert evaluation.metrics.per_type["PER"].f1 == 1.0
    logged = json.loads(json.dumps(evaluation.metrics.model_dump()))
    assert set(logged) == {
        "n_examples",
        "precision",
        "recall",
        "f1",
        "n_true",
        "n_predicted",
        "per_type",
    }
    assert (logged["n_true"], logged["n_predicted"]) == (2, 2)
