"""The Data Manager filters the loop asks Label Studio for, built in one place: the task
pages' queries and the saved tabs annotators work from use the same ones."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

# Data Manager datetime filters parse exactly this format (naive, UTC).
DM_DATETIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

Filter = dict[str, Any]  # one filter item, as the Data Manager's JSON has it


def all_of(items: Sequence[Filter]) -> Filter:
    """The tasks matching every item (no items: all tasks)."""
    return {"conjunction": "and", "items": list(items)}


def any_of(items: Sequence[Filter]) -> Filter:
    """The tasks matching at least one item."""
    return {"conjunction": "or", "items": list(items)}


def task_id(operator: str, value: int) -> Filter:
    """Task ids compared with `value` by `operator` ("greater", "less_or_equal", ...)."""
    return _item("id", operator, "Number", value)


def unlabelled() -> Filter:
    """Tasks without an annotation (skips count as annotations)."""
    return _item("total_annotations", "equal", "Number", 0)


def has_prediction_of(model_version: str) -> Filter:
    """Tasks holding a prediction of `model_version`; Label Studio matches a substring, so
    "m:1" also finds "m:10": check the versions where that matters."""
    return _item("predictions_model_versions", "contains", "List", [model_version])


def changed(cursor: datetime | None, since: datetime | None) -> Filter:
    """(updated_at >= cursor AND (annotated OR skipped)) OR (updated_at >= since AND created
    by `since`: it may have lost its annotations), written as Data Manager filter lines OR-ed
    together, each line a filter AND its child filter. Datetimes are in UTC.

    A cursor before `since` (the late-commit overlap) re-reads annotated tasks only: the
    tasks imported in the overlap would otherwise all come again, unannotated."""

    def changed_from(moment: datetime | None, alternative: Filter) -> Filter:
        if moment is None:
            return alternative
        return {**_at("updated_at", "greater_or_equal", moment), "child_filter": alternative}

    annotated = [
        _item(count, "greater", "Number", 0)
        for count in ("total_annotations", "cancelled_annotations")
    ]
    alternatives = [changed_from(cursor, alternative) for alternative in annotated]
    if since is not None:
        created = _at("created_at", "less_or_equal", since)
        alternatives.append(changed_from(max(cursor or since, since), created))
    return {"conjunction": "or", "items": alternatives}


def _at(column: str, operator: str, moment: datetime) -> Filter:
    return _item(column, operator, "Datetime", moment.strftime(DM_DATETIME_FORMAT))


def _item(column: str, operator: str, value_type: str, value: Any) -> Filter:
    return {
        "filter": f"filter:tasks:{column}",
        "operator": operator,
        "type": value_type,
        "value": value,
    }
