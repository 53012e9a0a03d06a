"""Label Studio projects: found or created by title, their label config kept current, their
counts, and the saved Data Manager tabs (views) annotators work from."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from annotation_loop.labelstudio.filters import Filter
from annotation_loop.labelstudio.transport import ApiArea

logger = logging.getLogger(__name__)


class Projects(ApiArea):
    """Label Studio's projects and their saved views."""

    def project_url(self, project_id: int) -> str:
        return f"{self.transport.url}/projects/{project_id}/data"

    def get_or_create_project(self, title: str, label_config: str) -> int:
        """The id of the project titled exactly `title`, created if absent; its label
        config is updated when it differs (Label Studio refuses configs that cannot show
        the existing annotations)."""
        page = 1
        while True:
            body = self.transport.request(
                "GET",
                "/api/projects/",
                params={
                    "title": title,  # a case-insensitive substring filter
                    "include": "id,title,label_config",
                    "ordering": "id",
                    "page": page,
                    "page_size": 100,
                },
                repeatable=True,
            )
            for project in body["results"]:
                if project["title"] == title:
                    if project["label_config"] != label_config:
                        self._update_label_config(project["id"], title, label_config)
                    return int(project["id"])
            if not body.get("next"):
                break
            page += 1
        return self.transport.create(
            "/api/projects/", {"title": title, "label_config": label_config}
        )

    def _update_label_config(self, project_id: int, title: str, label_config: str) -> None:
        self.transport.request(
            "PATCH",
            f"/api/projects/{project_id}/",
            json_body={"label_config": label_config},
            repeatable=True,
            refusal=(
                f"Label Studio refused the new label config of project {title!r} "
                f"({self.project_url(project_id)}): keep the labels its annotations use, or "
                "pick another project name"
            ),
        )
        logger.info("Updated the label config of project %r", title)

    def annotation_count(self, project_id: int) -> int:
        """The project's annotations that label something (skipped tasks' excluded)."""
        project = self.transport.request("GET", f"/api/projects/{project_id}/", repeatable=True)
        return int(project["total_annotations_number"]) - int(project["skipped_annotations_number"])

    def save_view(
        self, project_id: int, title: str, query: Filter, ordering: Sequence[str] = ()
    ) -> int:
        """A Data Manager tab of the tasks matching `query` (`filters.all_of`/`any_of`):
        created, or updated if the project has one with this title."""
        data = {"title": title, "filters": query, "ordering": list(ordering)}
        view_id = self._view_id(project_id, title)
        if view_id is None:
            return self.transport.create("/api/dm/views/", {"project": project_id, "data": data})
        self.transport.request(
            "PATCH",
            f"/api/dm/views/{view_id}/",
            json_body={"project": project_id, "data": data},
            repeatable=True,
        )
        return view_id

    def delete_view(self, project_id: int, title: str) -> None:
        """Removes the project's tab with this title, if it has one."""
        view_id = self._view_id(project_id, title)
        if view_id is not None:
            self.transport.request(
                "DELETE", f"/api/dm/views/{view_id}/", repeatable=True, missing_ok=True
            )

    def _view_id(self, project_id: int, title: str) -> int | None:
        views = self.transport.request(
            "GET", "/api/dm/views/", params={"project": project_id}, repeatable=True
        )
        return next((int(v["id"]) for v in views if v["data"].get("title") == title), None)

    def delete_project(self, project_id: int) -> None:
        self.transport.request(
            "DELETE", f"/api/projects/{project_id}/", repeatable=True, missing_ok=True
        )
