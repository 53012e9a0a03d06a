"""Files uploaded to Label Studio itself (`/data/upload/<project>/<file>`), read through its
API: a task made by uploading a file has no bucket object, and only Label Studio serves it,
to the API key's user (`Token` or `Bearer`, as `auth.TokenAuth` chooses)."""

from __future__ import annotations

from urllib.parse import SplitResult, unquote, urlsplit

from annotation_loop.data.confined_reads import RefusedObject
from annotation_loop.labelstudio.transport import ApiArea

UPLOAD_PREFIX = "/data/upload/"
DEFAULT_PORTS = {"http": 80, "https": 443}


def looks_like_upload(value: object) -> bool:
    """Whether a task data value may name an uploaded file: `upload_path` says if it does."""
    return isinstance(value, str) and UPLOAD_PREFIX in value


def _origin(parts: SplitResult) -> tuple[str, str | None, int | None]:
    try:
        port = parts.port or DEFAULT_PORTS.get(parts.scheme)
    except ValueError:  # not a number
        port = None
    return parts.scheme, parts.hostname, port


def upload_path(ref: str, label_studio_url: str) -> str:
    """The path, under `label_studio_url`, of the uploaded file `ref` names: as Label Studio
    writes it into tasks (`/data/upload/...`, after its own path prefix if it has one), or as
    a full URL on Label Studio's own scheme, host and port.

    Raises `RefusedObject` for anything else: a task's data is anyone's to write, and must
    never make the backend fetch another address (SSRF) or another Label Studio page.
    """
    base, parts = urlsplit(label_studio_url), urlsplit(ref)
    elsewhere = parts.username or parts.password or _origin(parts) != _origin(base)
    if (parts.scheme or parts.netloc) and elsewhere:
        raise RefusedObject(ref, f"not on Label Studio's own host {base.netloc}")
    if parts.query or parts.fragment:
        raise RefusedObject(ref, "a query or fragment: not an uploaded file's URL")
    path, prefix = parts.path, base.path.rstrip("/")
    # Label Studio served under a path (FORCE_SCRIPT_NAME) writes it into its upload URLs.
    if prefix and path.startswith(f"{prefix}/"):
        path = path[len(prefix) :]
    if not path.startswith(UPLOAD_PREFIX):
        raise RefusedObject(ref, f"not a file uploaded to Label Studio ({UPLOAD_PREFIX}...)")
    if ".." in unquote(path).replace("\\", "/").split("/"):
        raise RefusedObject(ref, "a '..' in the path")
    return path


class Uploads(ApiArea):
    """Files uploaded to Label Studio's projects."""

    def read_upload(self, ref: str, max_bytes: int) -> bytes:
        """The bytes of the uploaded file `ref` names (see `upload_path`), at most
        `max_bytes`; raises `UnreadableObject` (`RefusedObject` included) when this file is
        refused or cannot be read, `LabelStudioAuthError` if the API key is rejected."""
        return self.transport.read_file(upload_path(ref, self.transport.url), max_bytes)
