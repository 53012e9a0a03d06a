"""Labelled tasks whose label the model confidently disputes, as suggestions for a person to
review in Label Studio; nothing is changed without them. How labels are judged, and how well
it works, is in `annotation_loop.learning.label_issues`."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from annotation_loop.errors import ConfigurationError
from annotation_loop.labelstudio import PredictionIn
from annotation_loop.learning.annotations import LabelledItem
from annotation_loop.task_types import Example, LabelUnits, TaskType, label_review_of

if TYPE_CHECKING:  # at run time only the review pays for importing scikit-learn
    from annotation_loop.learning.label_issues import LabelIssues

logger = logging.getLogger(__name__)


class ReviewConfig(BaseModel):
    """How labels are reviewed (`label_review:` in configs/<task>/training.yaml)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    folds: int = Field(default=5, ge=2)
    # Of the labels flagged, the share the calibrated out-of-fold model may expect to be
    # correct after all: the flagging threshold is the largest that keeps within it.
    max_false_share: float = Field(default=0.2, gt=0.0, lt=1.0)
    max_items: int = Field(default=5000, ge=1)  # the newest labelled items checked


def recent_items(items: Sequence[LabelledItem], config: ReviewConfig) -> list[LabelledItem]:
    """The items the review checks: the newest `max_items` by task id."""
    return sorted(items, key=lambda item: item.task_id)[-config.max_items :]


def disputed_units(
    units: LabelUnits, confirmed: Collection[int], config: ReviewConfig
) -> LabelIssues | None:
    """The units whose label the out-of-fold model disputes; units of the examples (indexes
    as in `units.example`) in `confirmed`, whose label a reviewer decided, are fit on but
    never flagged. None when there are too few labels or classes to cross-validate yet."""
    # scikit-learn takes seconds to import: only the training run's review pays for it, not
    # every pipeline that imports the steps.
    from annotation_loop.learning.label_issues import find_label_issues

    flaggable = ~np.isin(units.example, np.fromiter(confirmed, dtype=np.int64))
    try:
        return find_label_issues(
            units.features,
            units.given,
            len(units.classes),
            folds=config.folds,
            groups=units.example,
            max_false_share=config.max_false_share,
            flaggable=flaggable,
        )
    except ConfigurationError as reason:
        logger.info("No label review this time: %s", reason)
        return None


def review_suggestions(
    task_type: TaskType,
    model: Any,
    examples: Sequence[Example],
    items: Mapping[str, LabelledItem],
    model_version: str,
    config: ReviewConfig,
) -> list[PredictionIn]:
    """One suggestion (a prediction with `model_version`) per example with a label issue:
    its target with the disputed units relabelled; scored by the given label's calibrated
    out-of-fold probability, so the least likely correct comes first. `items` are the
    examples' labelled items by example key; a confirmed one is never disputed."""
    review = label_review_of(task_type)
    units = review.label_units(model, examples)
    confirmed = [i for i, example in enumerate(examples) if items[example.key].confirmed]
    found = disputed_units(units, confirmed, config)
    if found is None:
        return []
    logger.info(
        "Label review of %d units, %d tasks confirmed by a reviewer (never flagged): "
        "out-of-fold probabilities calibrated at temperature %.2f; %s",
        len(units.given),
        len(confirmed),
        found.temperature,
        "no label is unlikely enough to flag"
        if found.threshold is None
        else f"{len(found.issues)} labels at or below probability {found.threshold:.2g} flagged",
    )
    disputed: dict[int, dict[int, str]] = defaultdict(dict)
    confidence: dict[int, float] = {}
    for issue in found.issues:
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
                result=task_type.result_for_target(target, items[example.key].input_ref),
                score=confidence[index],
                model_version=model_version,
            )
        )
    return suggestions
