"""How much one caller can make the ML backend do: request body size, tasks and text length
per `/predict`, predictions at once, and how long a `/predict` may take."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import HTTPException
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send


@dataclass(frozen=True)
class RequestLimits:
    # Label Studio sends each task's data, annotations and predictions: a task opened for
    # labelling is a few KB, 160 texts of the longest kind below fit.
    max_body_bytes: int = 16 * 1024 * 1024
    # Tasks past this many in one /predict get no prediction this time ("Retrieve
    # predictions" on more tasks sends them all at once; running it again does the next ones).
    max_tasks: int = 500
    # A task whose model input (a text, or an image's URI) is longer gets no prediction.
    max_text_chars: int = 100_000
    # Predictions share the CPU (or GPU): more at once only make each one slower.
    max_concurrent_predictions: int = 2
    # Label Studio gives /predict 100 s (`ML_TIMEOUT_PREDICT`). A request still waiting for its
    # turn then gets 503; one predicting stops after the batch in progress and answers with
    # the predictions made so far, none for the rest (Label Studio asks for them again later).
    deadline_s: float = 60.0
    # Open connections (uvicorn answers 503 beyond them).
    max_connections: int = 64


class BodySizeLimit:
    """Answers 413 to a request body over `max_bytes`: before reading it when its
    Content-Length says so, else as soon as the bytes read pass the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            await self._too_large()(scope, receive, send)
            return
        received = 0

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # FastAPI passes an HTTPException raised while reading the body on to its
                    # exception handler, which answers with it.
                    raise HTTPException(413, self._detail())
            return message

        await self.app(scope, counting_receive, send)

    def _too_large(self) -> JSONResponse:
        return JSONResponse({"detail": self._detail()}, status_code=413)

    def _detail(self) -> str:
        return f"Request body over {self.max_bytes} bytes"
