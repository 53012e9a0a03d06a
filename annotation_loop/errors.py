"""Errors a user can act on.

Every `LoopError` carries a one-line message that says what is wrong and what to do
next; `run.py` prints it without a traceback and exits non-zero.
"""


class LoopError(Exception):
    """A problem the user can fix; the message is shown as-is, on one line."""


class ServiceError(LoopError):
    """A local service (Label Studio, the S3 stand-in) failed to start or stop."""


class LabelStudioUnreachable(LoopError):
    """Label Studio did not answer at the configured URL."""


class LabelStudioHTTPError(LoopError):
    """Label Studio answered a request with an error status.

    `status`, `method` and `path` say which answer to which request, `detail` is the
    server's own reason (one line) and `meaning` what the refusal means and what to do next:
    callers branch on the fields, users read the message.
    """

    def __init__(self, meaning: str, status: int, method: str, path: str, detail: str) -> None:
        self.meaning = meaning
        self.status = status
        self.method = method
        self.path = path
        self.detail = detail
        super().__init__(f"{meaning} (HTTP {status} on {method} {path}: {detail})")


class LabelStudioAuthError(LabelStudioHTTPError):
    """Label Studio rejected the API key (401) or refused its user the request (403)."""


class StorageError(LoopError):
    """The bucket or folder holding the raw items cannot be used."""


class UnknownLabelError(LoopError):
    """An annotation or prediction names a label that is not in the label list."""


class ConfigurationError(LoopError):
    """Settings are missing or inconsistent."""


class ArtifactError(LoopError):
    """A stored artifact is not what the loop writes (a tampered or foreign folder): it is
    refused before anything in it is used."""
