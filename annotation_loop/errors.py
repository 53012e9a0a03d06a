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


class LabelStudioAuthError(LoopError):
    """Label Studio rejected the API key."""


class StorageError(LoopError):
    """The bucket or folder holding the raw items cannot be used."""


class UnknownLabelError(LoopError):
    """An annotation or prediction names a label that is not in the label list."""


class ConfigurationError(LoopError):
    """Settings are missing or inconsistent."""


class ArtifactError(LoopError):
    """A stored artifact is not what the loop writes (a tampered or foreign folder): it is
    refused before anything in it is used."""
