"""One object, three spellings: fsspec URIs, Label Studio's URIs, and fsspec paths.

| store | fsspec URI                | Label Studio task URI            | fsspec path      |
|-------|---------------------------|----------------------------------|------------------|
| S3    | s3://bucket/key           | s3://bucket/key                  | bucket/key       |
| GCS   | gs://bucket/key           | gs://bucket/key                  | bucket/key       |
| Azure | az://container/key        | azure-blob://container/key       | container/key    |

Keys are used verbatim (spaces, unicode): Label Studio splits the URI on the first `/`
after the bucket and signs the rest as it is, so percent-encoding would name another key.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from annotation_loop.errors import StorageError

# fsspec protocol -> Label Studio's scheme for the same store
LABEL_STUDIO_SCHEMES = {
    "s3": "s3",
    "gs": "gs",
    "gcs": "gs",
    "az": "azure-blob",
    "abfs": "azure-blob",
}
FSSPEC_SCHEMES = {"s3": "s3", "gs": "gs", "azure-blob": "az"}


def split_uri(uri: str) -> tuple[str, str, str]:
    """(scheme, bucket, key) of `scheme://bucket/key`."""
    scheme, sep, rest = uri.partition("://")
    bucket, _, key = rest.partition("/")
    if not sep or not bucket:
        raise StorageError(f"{uri!r} is not a bucket URI: expected s3://, gs:// or az://bucket/key")
    return scheme, bucket, key


def to_label_studio_uri(uri: str) -> str:
    """The URI a task stores so Label Studio's cloud storage resolves it for annotators."""
    scheme, bucket, key = split_uri(uri)
    if scheme not in LABEL_STUDIO_SCHEMES:
        raise StorageError(f"Label Studio cannot resolve {scheme}:// URIs ({uri})")
    return f"{LABEL_STUDIO_SCHEMES[scheme]}://{bucket}/{key}"


def from_label_studio_uri(uri: str) -> str:
    """The fsspec URI of a Label Studio cloud URI."""
    scheme, bucket, key = split_uri(uri)
    if scheme not in FSSPEC_SCHEMES:
        raise StorageError(f"Unknown Label Studio storage scheme {scheme}:// in {uri}")
    return f"{FSSPEC_SCHEMES[scheme]}://{bucket}/{key}"


def fsspec_path(uri: str) -> str:
    """What fsspec filesystems take: the URI without its scheme (local paths unchanged)."""
    return uri.split("://", 1)[1] if "://" in uri else uri


def is_loopback_host(host: str) -> bool:
    """Whether a host name or address is reachable from this machine only (another name may
    resolve anywhere)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: str | None) -> bool:
    return is_loopback_host(urlsplit(url or "").hostname or "")
