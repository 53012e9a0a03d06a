"""What a task type's evaluation reports: a declared pydantic model per family of task types.

Each model is logged as it dumps (`model_dump()`, JSON-able) on the model version, and a
task type's `promotion_metric` names one of its float fields: the registry refuses a task
type whose metric its `metrics_type` does not declare, before anything runs.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict

from annotation_loop.errors import ConfigurationError


class ClassScores(BaseModel):
    """One class's (or entity type's) scores."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    precision: float
    recall: float
    f1: float
    support: int  # how often the class is the true one


class ValidationMetrics(BaseModel):
    """What every task type's validation scores hold; subclasses add the scores."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    n_examples: int  # validation items the model could read and was scored on
    # Float fields that are rates of errors (WER): logged, but never promoted by.
    lower_is_better: ClassVar[frozenset[str]] = frozenset()

    @classmethod
    def score_names(cls) -> tuple[str, ...]:
        """The fields a task type may promote by: its float scores, higher is better."""
        return tuple(
            name
            for name, field in cls.model_fields.items()
            if field.annotation is float and name not in cls.lower_is_better
        )

    def score(self, metric: str) -> float:
        if metric not in self.score_names():
            raise ConfigurationError(
                f"{type(self).__name__} has no score {metric!r}: "
                f"use one of {', '.join(self.score_names())}"
            )
        return float(getattr(self, metric))


class ClassificationScores(ValidationMetrics):
    """One label per item (images, texts)."""

    accuracy: float
    macro_f1: float
    labels: list[str]
    per_class: dict[str, ClassScores]
    confusion_matrix: list[list[int]]  # [true label][predicted label], in `labels` order


class EntityScores(ValidationMetrics):
    """Labelled spans (NER): entity-level and micro-averaged, an entity counting only if its
    bounds and type are both right."""

    precision: float
    recall: float
    f1: float
    n_true: int  # annotated entities
    n_predicted: int
    per_type: dict[str, ClassScores]
