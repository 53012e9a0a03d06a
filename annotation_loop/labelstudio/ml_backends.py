"""Connecting the loop's ML backend to a project, and the webhook that tells it of changes."""

from __future__ import annotations

from typing import Any

from annotation_loop.errors import LabelStudioHTTPError
from annotation_loop.labelstudio.transport import ApiArea


class MLBackends(ApiArea):
    """The ML backends connected to Label Studio's projects, and the projects' webhooks."""

    def connect_ml_backend(
        self,
        project_id: int,
        url: str,
        title: str,
        basic_auth: tuple[str, str] | None,
        *,
        interactive: bool = False,
    ) -> int:
        """Connects the ML backend at `url` to the project, titled `title`, with `basic_auth`
        (user, password; None: none); an existing connection to the same URL is kept and
        updated. Label Studio calls its /health and /setup first, with those credentials, and
        refuses a backend that fails them. `interactive`: Label Studio forwards annotators'
        regions to it (interactive preannotations), which it refuses to do otherwise.

        Title it with the served model version: a project's `model_version` may only name a
        connected backend's title or a version that has predictions."""
        body: dict[str, Any] = {
            "project": project_id,
            "url": url,
            "title": title,
            "is_interactive": interactive,
        }
        if basic_auth is None:
            # Label Studio sends basic auth whenever it has a user and a password, whatever
            # the method; an empty password would fail its check on a new backend.
            body.update(auth_method="NONE", basic_auth_user="")
        else:
            user, password = basic_auth
            body.update(auth_method="BASIC_AUTH", basic_auth_user=user, basic_auth_pass=password)
        existing = self._ml_backend_at(project_id, url)
        try:
            if existing is not None:
                # Label Studio 1.23 checks the backend again on every update, and fails (500)
                # unless the update names the project and URL.
                self.transport.request(
                    "PATCH", f"/api/ml/{existing}", json_body=body, repeatable=True
                )
                return existing
            return self.transport.create("/api/ml", body)
        except LabelStudioHTTPError as refused:  # 403 included: so SSRF protection refuses
            # Label Studio 1.23 saves a new backend, then answers 403 when its SSRF protection
            # refuses the webhook it makes for it: the backend is connected all the same.
            connected = None if existing is not None else self._ml_backend_at(project_id, url)
            if connected is not None:
                return connected
            raise LabelStudioHTTPError(
                f"Label Studio refused the ML backend at {url}: serve it on an address Label "
                "Studio may reach (--host, --url) and check that the project's label config "
                "fits the model (the backend's log says)",
                refused.status,
                refused.method,
                refused.path,
                refused.detail,
            ) from None

    def _ml_backend_at(self, project_id: int, url: str) -> int | None:
        backends = self.transport.request(
            "GET", "/api/ml", params={"project": project_id}, repeatable=True
        )
        return next(
            (int(b["id"]) for b in backends if b["url"].rstrip("/") == url.rstrip("/")), None
        )

    def ensure_webhook(self, project_id: int, url: str, headers: dict[str, str]) -> int:
        """The project's webhook to `url`, sending every event with its payload and `headers`:
        created, or updated if one goes there. Raises `LabelStudioHTTPError` if Label Studio
        refuses it (its SSRF protection refuses loopback and private addresses)."""
        body = {
            "project": project_id,
            "url": url,
            "headers": headers,
            "send_payload": True,
            "send_for_all_actions": True,
            "is_active": True,
        }
        hooks = self.transport.request(
            "GET", "/api/webhooks/", params={"project": project_id}, repeatable=True
        )
        for hook in hooks:
            if hook["url"] == url and hook.get("project") == project_id:
                self.transport.request(
                    "PATCH", f"/api/webhooks/{hook['id']}/", json_body=body, repeatable=True
                )
                return int(hook["id"])
        return self.transport.create("/api/webhooks/", body)
