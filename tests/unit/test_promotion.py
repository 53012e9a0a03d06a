"""Promotion is compare-and-set: the `evaluate_model` and `promote_model` steps against the
real (local) ZenML store, with the task type, the examples and the models faked, and another
run's promotion landing while this one evaluates."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import pytest
from PIL import Image
from zenml import Model
from zenml.client import Client
from zenml.enums import ModelStages

import steps.training.evaluate as evaluate_step
import steps.training.promote as promote_step
from annotation_loop.learning import training_data
from annotation_loop.zenml_integration import leases, model_registry
from annotation_loop.zenml_integration.leases import promotion_lease
from annotation_loop.zenml_integration.model_registry import production_version


@dataclass
class FakeTaskType:
    """Each model is a version name; its score is looked up, and `on_evaluate` runs before
    (to let another run promote a version in the middle of this one)."""

    scores: dict[str, float]
    on_evaluate: Callable[[str], None] = lambda model: None
    evaluated: list[str] = field(default_factory=list)
    promotion_metric: str = "accuracy"

    def evaluate(self, model: str, examples: list[str]) -> Any:
        self.evaluated.append(model)
        self.on_evaluate(model)
        score = self.scores[model]
        return SimpleNamespace(
            score=lambda metric: score,
            metrics=SimpleNamespace(model_dump=lambda: {"accuracy": score}),
            figure=Image.new("RGB", (1, 1)),
        )


@pytest.fixture
def model_name() -> str:
    name = f"promotion_{uuid.uuid4().hex[:8]}"
    client = Client()
    client.create_model(name)
    for _ in range(4):  # versions "1" to "4"
        client.create_model_version(name)
    Model(name=name, version="1").set_stage(ModelStages.PRODUCTION)
    return name


def set_production(model_name: str, version: str) -> None:
    """What another run's step does when it promotes `version`."""
    Model(name=model_name, version=version).set_stage(ModelStages.PRODUCTION, force=True)


def evaluate_and_promote(
    monkeypatch: pytest.MonkeyPatch, model_name: str, candidate: str, task_type: FakeTaskType
) -> dict[str, Any]:
    """Runs the two steps' bodies for `candidate` on one validation example."""
    snapshot = SimpleNamespace(
        task_type=task_type, items=["item"], split=lambda fraction: ([], ["item"])
    )
    context = SimpleNamespace(model=Model(name=model_name, version=candidate))
    for module in (evaluate_step, promote_step):
        monkeypatch.setattr(module, "get_step_context", lambda: context)
        monkeypatch.setattr(module, "log_metadata", lambda **kwargs: None)
    monkeypatch.setattr(training_data, "load_examples", lambda *args: ["example"])
    monkeypatch.setattr(model_registry, "load_artifact", lambda version, name: str(version.name))
    validation, _ = evaluate_step.evaluate_model.entrypoint(
        model=candidate, snapshot=snapshot, source=None, validation_fraction=0.2
    )
    promotion = promote_step.promote_model.entrypoint(
        validation=validation, snapshot=snapshot, source=None, validation_fraction=0.2
    )
    return promotion.model_dump()  # type: ignore[no-any-return]


def production(model_name: str) -> str | None:
    version = production_version(model_name)
    return None if version is None else str(version.name)


def test_a_worse_model_finishing_last_does_not_replace_a_better_production(
    monkeypatch: pytest.MonkeyPatch, model_name: str
) -> None:
    # Version 3 (0.6) beats production version 1 (0.5); while it is being compared, version
    # 2 (0.9) is promoted by its own run. Version 3 must be compared with 2 and lose.
    scores = {"1": 0.5, "2": 0.9, "3": 0.6}

    def meanwhile(model: str) -> None:
        if model == "1":
            set_production(model_name, "2")

    task_type = FakeTaskType(scores, on_evaluate=meanwhile)
    summary = evaluate_and_promote(monkeypatch, model_name, "3", task_type)
    assert production(model_name) == "2"
    assert summary["promoted"] is False
    assert (summary["production_version"], summary["production_score"]) == ("2", 0.9)
    assert task_type.evaluated == ["3", "1", "2"]  # the same example, against the new one
    assert promotion_lease(model_name, "test").holder() is None  # let go


def test_a_better_model_still_wins_against_a_production_promoted_meanwhile(
    monkeypatch: pytest.MonkeyPatch, model_name: str
) -> None:
    scores = {"1": 0.5, "2": 0.55, "3": 0.6}

    def meanwhile(model: str) -> None:
        if model == "1":
            set_production(model_name, "2")

    summary = evaluate_and_promote(
        monkeypatch, model_name, "3", FakeTaskType(scores, on_evaluate=meanwhile)
    )
    assert production(model_name) == "3"
    assert (summary["promoted"], summary["production_version"]) == (True, "2")


def test_an_unchanged_production_is_compared_once(
    monkeypatch: pytest.MonkeyPatch, model_name: str
) -> None:
    task_type = FakeTaskType({"1": 0.5, "4": 0.7})
    summary = evaluate_and_promote(monkeypatch, model_name, "4", task_type)
    assert production(model_name) == "4"
    assert summary["promoted"] is True
    assert task_type.evaluated == ["4", "1"]


def test_a_promotion_in_progress_elsewhere_is_waited_for(
    monkeypatch: pytest.MonkeyPatch, model_name: str
) -> None:
    # Another run holds the promotion lease and promotes version 2 (0.9) when it lets go:
    # version 3 (0.6), which beat version 1, waits for it, then compares with 2 and loses.
    other = promotion_lease(model_name, "another run's promotion")
    assert other.try_acquire() is None
    waited: list[str] = []

    def let_go(message: str, *args: Any) -> None:
        waited.append(message % args)
        set_production(model_name, "2")
        other.release()

    monkeypatch.setattr(leases.logger, "warning", let_go)
    summary = evaluate_and_promote(
        monkeypatch, model_name, "3", FakeTaskType({"1": 0.5, "2": 0.9, "3": 0.6})
    )
    assert len(waited) == 1 and "another run's promotion" in waited[0]
    assert (production(model_name), summary["promoted"]) == ("2", False)
