"""The clouds the loop runs on, one module each behind the `Cloud` protocol (`base`), and
the registry that finds one by name (`get_cloud`) or by a URI it stores (`cloud_of`)."""

from __future__ import annotations

from collections.abc import Iterable

from annotation_loop.clouds.aws import AWS
from annotation_loop.clouds.azure import AZURE
from annotation_loop.clouds.base import BucketCloud, Cloud, CloudName
from annotation_loop.clouds.gcp import GCP
from annotation_loop.clouds.local import LOCAL
from annotation_loop.data.confined_reads import scheme_of
from annotation_loop.errors import ConfigurationError, StorageError

_ALL: tuple[Cloud, ...] = (LOCAL, AWS, GCP, AZURE)
CLOUDS: dict[str, Cloud] = {cloud.name: cloud for cloud in _ALL}
CLOUD_NAMES: tuple[str, ...] = tuple(CLOUDS)
BUCKET_CLOUDS: dict[str, BucketCloud] = {
    name: cloud for name, cloud in CLOUDS.items() if isinstance(cloud, BucketCloud)
}
_BY_SCHEME = {cloud.scheme: cloud for cloud in CLOUDS.values()}
# Its name in annotation_loop.dev.services: every cloud's tasks live there.
LABEL_STUDIO_SERVICE = "label_studio"


def get_cloud(name: str) -> Cloud:
    try:
        return CLOUDS[name]
    except KeyError:
        raise ConfigurationError(
            f"Unknown cloud {name!r}: use one of {', '.join(CLOUDS)}"
        ) from None


def cloud_of(uri: str) -> Cloud:
    """The cloud whose store `uri` names (a path without a scheme: the local folder's)."""
    scheme = scheme_of(uri)
    if scheme not in _BY_SCHEME:
        stores = ", ".join(f"{s}://" for s in _BY_SCHEME if s != LOCAL.scheme)
        raise StorageError(f"No cloud stores {uri!r}: use {stores} or a local folder")
    return _BY_SCHEME[scheme]


def local_services(clouds: Iterable[str]) -> tuple[str, ...]:
    """The local services these clouds need in the demo and the tests: Label Studio, and each
    cloud's stand-in."""
    stand_ins = (get_cloud(name).stand_in for name in clouds)
    return (LABEL_STUDIO_SERVICE, *dict.fromkeys(s.service for s in stand_ins if s))


__all__ = [
    "BUCKET_CLOUDS",
    "CLOUDS",
    "CLOUD_NAMES",
    "Cloud",
    "CloudName",
    "cloud_of",
    "get_cloud",
    "local_services",
]
