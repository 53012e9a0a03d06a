"""Labelled tasks whose label the model confidently disputes, as suggestions for a person to
review in Label Studio; nothing is changed without them."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from annotation_loop.errors import ConfigurationError
from annotation_loop.labelstudio import PredictionIn
from annotation_loop.learning.annotations import LabelledItem
from annotation_loop.task_types import Example, TaskType, label_review_of

logger = logging.getLogger(__name__)


class ReviewConfig(BaseModel):
    """How labels are reviewed (`label_review:` in configs/<task>/training.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    folds: int = Field(default=5, ge=2)
    # How sure the out-of-fold model must be of its suggestion.
    min_confidence: float = Field(default=0.5, ge=0.0, le=1.0)
    max_items: int = Field(default=5000, ge=1)  # the newest labelled items checked


def recent_items(items: Sequence[LabelledItem], config: ReviewConfig) -> list[LabelledItem]:
    """The items the review checks: the newest `max_items` by task id."""
    return sorted(items, key=lambda item: item.task_id)[-config.max_items :]


def review_suggestions(
    task_type: TaskType,
    model: Any,
    examples: Sequence[Example],
    input_refs: dict[str, str],
    model_version: str,
    config: ReviewConfig,
) -> list[PredictionIn]:
    """One suggestion (a prediction with `model_version`) per example with a label issue:
    its target with the disputed units relabelled; scored by the given label's out-of-fold
    probability, so the least likely correct comes first."""
    review = label_review_of(task_type)
    # scikit-learn takes seconds to import: only the training run's review pays for it, not
    # every pipeline that imports the steps.
    from annotation_loop.learning.label_issues import find_label_issues, out_of_fold_probabilities

    units = review.label_units(model, examples)
    try:
        probabilities = out_of_fold_probabilities(
            units.features,
            units.given,
            len(units.classes),
            folds=config.folds,
            groups=units.example,
        )
    except ConfigurationError as reason:  # too few labels or classes to cross-validate yet
        logger.info("No label review this time: %s", reason)
        return []
    disputed: dict[int, dict[int, str]] = defaultdict(dict)
    confidence: dict[int, float] = {}
    for issue in find_label_issues(probabilities, units.given, config.min_confidence):
        index = int(units.example[issue.unit])
        disputed[index][int(units.position[issue.unit])] = units.classes[issue.suggested]
        confidence[index] = min(confidence.get(index, 1.0), issue.given_probability)
    suggestions = []
    for index, relabelled in disputed.items():
        example = examples[index]
        target = review.suggest_target(model, example, relabelled)
        suggestions.append(
            PredictionIn(
                task_id=int(example.key),
                result=task_type.result_for_target(target, input_refs[example.key]),
                score=confidence[index],
                model_version=model_version,
            )
        )
    return suggestions
