"""`LabelStudioClient`: the one object the rest of the loop talks to Label Studio through."""

from __future__ import annotations

import httpx

from annotation_loop.labelstudio.auth import TokenAuth
from annotation_loop.labelstudio.ml_backends import MLBackends
from annotation_loop.labelstudio.predictions import Predictions
from annotation_loop.labelstudio.projects import Projects
from annotation_loop.labelstudio.storages import Storages
from annotation_loop.labelstudio.tasks import Tasks
from annotation_loop.labelstudio.transport import Transport
from annotation_loop.labelstudio.uploads import Uploads
from annotation_loop.labelstudio.users import Users


class LabelStudioClient(Projects, Storages, MLBackends, Tasks, Predictions, Uploads, Users):
    """What the loop needs from Label Studio, in as few requests as the API allows: every
    API area's methods (each area's own class says what they do), over one transport that
    authenticates with `api_key` and retries."""

    def __init__(
        self,
        url: str,
        api_key: str,
        timeout: float = 60.0,
        transport: httpx.BaseTransport | None = None,  # e.g. a proxy-aware or test transport
    ) -> None:
        self.url = url.rstrip("/")
        http = httpx.Client(
            base_url=self.url,
            auth=TokenAuth(api_key, refresh_url=f"{self.url}/api/token/refresh/"),
            timeout=timeout,
            transport=transport,
        )
        super().__init__(Transport(self.url, http))

    def check(self) -> None:
        """Raises `LabelStudioUnreachable` or `LabelStudioAuthError` unless the API answers
        at once (the check before a run)."""
        self.transport.check()
