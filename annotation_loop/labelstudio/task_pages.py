"""Reading the Data Manager's task list (`/api/tasks`) a page at a time.

Measured on Label Studio 1.23.2 (SQLite, 2 cores): ~0.3 ms per task whatever the page size
(the server's per-task prefetches dominate).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from annotation_loop.labelstudio import filters
from annotation_loop.labelstudio.filters import Filter
from annotation_loop.labelstudio.transport import RECOVERY_DELAYS_S, Transport

TASK_INDEX_PAGE_SIZE = 5000


def task_page(
    transport: Transport,
    project_id: int,
    *,
    query_filters: Filter | None,
    ordering: str,
    page_size: int,
    include: str | None = None,
    selected: Sequence[int] | None = None,
    page: int = 1,
) -> dict[str, Any]:
    """One page of the project's tasks matching `query_filters`, URIs left unresolved:
    `tasks`, and the `total` count matching the filters. `include` names the fields (None:
    all, annotations and predictions too); `selected` restricts to those task ids."""
    query: dict[str, Any] = {"ordering": [ordering]}
    if query_filters:
        query["filters"] = query_filters
    if selected is not None:
        query["selectedItems"] = {"all": False, "included": list(selected)}
    params: dict[str, Any] = {
        "project": project_id,
        "page": page,
        "page_size": page_size,
        "resolve_uri": "false",
        "query": json.dumps(query),
    }
    if include is None:
        params["fields"] = "all"
    else:
        params["include"] = include
    # A page past the end is a 404.
    body = transport.request(
        "GET",
        "/api/tasks/",
        params=params,
        repeatable=True,
        missing_ok=page > 1,
        retry_delays=RECOVERY_DELAYS_S,
    )
    return body if body is not None else {"tasks": []}


def tasks_by_id(
    transport: Transport,
    project_id: int,
    *,
    include: str,
    matching: Sequence[Filter] = (),
    selected: Sequence[int] | None = None,
    page_size: int = TASK_INDEX_PAGE_SIZE,
    after_id: int = 0,
) -> Iterator[dict[str, Any]]:
    """All tasks above `after_id` matching every filter of `matching`, keyset-paged by id so
    that concurrent imports neither shift nor repeat pages."""
    last_id = after_id
    while True:
        tasks = task_page(
            transport,
            project_id,
            query_filters=filters.all_of([*matching, filters.task_id("greater", last_id)]),
            ordering="tasks:id",
            page_size=page_size,
            include=include,
            selected=selected,
        )["tasks"]
        yield from tasks
        if len(tasks) < page_size:
            return
        last_id = tasks[-1]["id"]
