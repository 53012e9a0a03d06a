"""How requests to Label Studio prove who sends them: either kind of API key it issues."""

from __future__ import annotations

from collections.abc import Generator

import httpx


class TokenAuth(httpx.Auth):
    """A legacy token goes as `Token <key>`; a personal access token (a JWT refresh token)
    is exchanged at /api/token/refresh/ for a short-lived access token sent as `Bearer`,
    exchanged again when the server answers 401.

    For sync clients (the loop's): only the refresh answer's body is read here, so that a
    streamed download (an uploaded file) is read as it comes, within its size limit, and not
    whole before its caller sees it, as `requires_response_body` would."""

    def __init__(self, api_key: str, refresh_url: str) -> None:
        self._api_key = api_key
        self._refresh_url = refresh_url
        self._is_jwt = api_key.count(".") == 2
        self._access: str | None = None

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        if not self._is_jwt:
            request.headers["Authorization"] = f"Token {self._api_key}"
            yield request
            return
        if self._access is None:
            yield from self._refresh()
        request.headers["Authorization"] = f"Bearer {self._access}"
        response = yield request
        if response.status_code == 401:
            yield from self._refresh()
            request.headers["Authorization"] = f"Bearer {self._access}"
            yield request

    def _refresh(self) -> Generator[httpx.Request, httpx.Response, None]:
        response = yield httpx.Request("POST", self._refresh_url, json={"refresh": self._api_key})
        response.read()
        # A refused token leaves a stale access token: the retried request then gets the 401.
        if response.status_code == 200:
            self._access = response.json()["access"]
