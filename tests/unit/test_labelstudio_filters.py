"""The Data Manager filters, built in one place, are the ones the client and the queues sent
before they were: Label Studio parses exactly these shapes."""

from __future__ import annotations

from datetime import UTC, datetime

from annotation_loop.labelstudio import filters

SINCE = datetime(2025, 3, 1, 12, 0, 0, 250000, tzinfo=UTC)
CURSOR = datetime(2025, 3, 1, 11, 50, 0, tzinfo=UTC)


def annotated(count: str) -> dict[str, object]:
    return {"filter": f"filter:tasks:{count}", "operator": "greater", "type": "Number", "value": 0}


def updated_from(value: str, child: dict[str, object]) -> dict[str, object]:
    return {
        "filter": "filter:tasks:updated_at",
        "operator": "greater_or_equal",
        "type": "Datetime",
        "value": value,
        "child_filter": child,
    }


CREATED_BY_SINCE = {
    "filter": "filter:tasks:created_at",
    "operator": "less_or_equal",
    "type": "Datetime",
    "value": "2025-03-01T12:00:00.250000Z",
}


def test_the_first_fetch_asks_for_every_annotated_or_skipped_task() -> None:
    assert filters.changed(None, None) == {
        "conjunction": "or",
        "items": [annotated("total_annotations"), annotated("cancelled_annotations")],
    }


def test_a_fetch_in_the_overlap_rereads_annotated_tasks_and_since_the_watermark_the_rest() -> None:
    cursor = "2025-03-01T11:50:00.000000Z"
    assert filters.changed(CURSOR, SINCE) == {
        "conjunction": "or",
        "items": [
            updated_from(cursor, annotated("total_annotations")),
            updated_from(cursor, annotated("cancelled_annotations")),
            updated_from("2025-03-01T12:00:00.250000Z", CREATED_BY_SINCE),
        ],
    }


def test_a_cursor_past_the_watermark_bounds_every_line() -> None:
    later = datetime(2025, 3, 1, 13, 0, 0, tzinfo=UTC)
    cursor = "2025-03-01T13:00:00.000000Z"
    assert filters.changed(later, SINCE)["items"] == [
        updated_from(cursor, annotated("total_annotations")),
        updated_from(cursor, annotated("cancelled_annotations")),
        updated_from(cursor, CREATED_BY_SINCE),
    ]


def test_task_id_unlabelled_and_prediction_filters_keep_their_shapes() -> None:
    assert filters.all_of([filters.task_id("greater", 41)]) == {
        "conjunction": "and",
        "items": [
            {"filter": "filter:tasks:id", "operator": "greater", "type": "Number", "value": 41}
        ],
    }
    assert filters.unlabelled() == {
        "filter": "filter:tasks:total_annotations",
        "operator": "equal",
        "type": "Number",
        "value": 0,
    }
    assert filters.has_prediction_of("m:3 review") == {
        "filter": "filter:tasks:predictions_model_versions",
        "operator": "contains",
        "type": "List",
        "value": ["m:3 review"],
    }
