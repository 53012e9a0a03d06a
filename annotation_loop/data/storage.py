"""The raw items: a prefix of `batch_N/` folders in a bucket (or a local folder), via fsspec.

Identity comes from the listing (S3 ETag, GCS MD5, Azure MD5/ETag) so a sync never
downloads objects; only local folders, which have no such field, are hashed on disk.

Reads are confined (`confined_reads`): a task names the object to read, so only objects under
the dataset, of at most `max_item_bytes`, are read. A listing page or an object read that
fails is retried; an object that still cannot be read is skipped and reported, not fatal.
"""

from __future__ import annotations

import base64
import errno
import hashlib
import logging
import os
import posixpath
import re
import stat
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import PurePosixPath
from typing import Any, TypeVar
from urllib.parse import quote

import fsspec
import fsspec.asyn
from pydantic import BaseModel, Field

from annotation_loop.clouds import BUCKET_CLOUDS, cloud_of
from annotation_loop.clouds.base import BucketCloud, Page
from annotation_loop.data.confined_reads import (
    ObjectGone,
    RefusedObject,
    UnreadableObject,
    confined_path,
    read_local_file,
    scheme_of,
    too_big,
)
from annotation_loop.data.uris import fsspec_path, to_label_studio_uri
from annotation_loop.errors import StorageError

logger = logging.getLogger(__name__)
T = TypeVar("T")

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
BATCH_PATTERN = re.compile(r"^batch_(\d+)$")
MD5_HEX = re.compile(r"[0-9a-f]{32}")
# Keys per listing request (S3's maximum): a sync holds a few pages, never a whole listing.
LISTING_PAGE = 1000
# The most one read may bring in, images and text files alike; more is refused.
DEFAULT_MAX_ITEM_BYTES = 32 * 1024 * 1024
# The largest image decoded (50 MP: ~150 MB of RGB pixels); bigger ones are refused unread.
DEFAULT_MAX_IMAGE_PIXELS = 50_000_000
# Tries of a listing page or an object read that fails in a way that may pass, with a pause
# of RETRY_DELAY seconds, doubled each time, in between.
ATTEMPTS = 3
RETRY_DELAY = 0.5

AUTH_ERRORS = (
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "AuthenticationFailed",
    "AuthorizationFailure",
    "Invalid Credentials",
    "Anonymous caller",
    "Forbidden",
    "Unable to locate credentials",
    "account_name with credentials",
)
MISSING_BUCKET_ERRORS = (
    "NoSuchBucket",
    "ContainerNotFound",
    "The specified container does not exist",
)


class DataSource(BaseModel):
    """Where a dataset's batches live. Credentials never travel here: they come from the
    environment (or the workload's cloud identity on a remote orchestrator)."""

    root_uri: str  # "s3://bucket", or an absolute local folder for the `local` cloud
    dataset: str  # prefix under the root holding batch_1/, batch_2/, ...
    endpoint_url: str | None = None  # S3-compatible servers (SeaweedFS, MinIO); None on AWS
    region: str = "us-east-1"
    # Rows of JSON/JSONL/CSV text files: which columns hold the text and the row's id.
    text_field: str = "text"
    id_field: str = "id"
    # What one item may cost to read: bytes of an object, pixels of a decoded image.
    max_item_bytes: int = Field(default=DEFAULT_MAX_ITEM_BYTES, gt=0)
    max_image_pixels: int = Field(default=DEFAULT_MAX_IMAGE_PIXELS, gt=0)

    @property
    def protocol(self) -> str:
        return scheme_of(self.root_uri)

    @property
    def dataset_uri(self) -> str:
        return f"{self.root_uri.rstrip('/')}/{self.dataset}"


@dataclass(frozen=True)
class StoredObject:
    uri: str  # full fsspec URI ("s3://bucket/mnist/batch_1/00001.png" or a local path)
    key: str  # relative to the dataset: "batch_1/00001.png"
    batch: str
    content_hash: str
    size: int


@dataclass
class BatchListing:
    batch: str
    objects: list[StoredObject] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # keys with other suffixes
    # One line each: objects refused (too big, not a regular file), a listing cut short.
    problems: list[str] = field(default_factory=list)


def batch_sort_key(name: str) -> tuple[int, str]:
    """batch_2 sorts before batch_10."""
    match = BATCH_PATTERN.match(name)
    return (int(match.group(1)) if match else 1 << 62, name)


def _content_hash(info: dict[str, Any]) -> str | None:
    """The store's own content fingerprint from a listing entry, if it has one.

    MD5s are spelled alike on every store (`md5:<hex>`), so the same image gets the same
    identity on S3 (single-part ETag), GCS (md5Hash), Azure (Content-MD5) and disk.
    """
    gcs_md5 = info.get("md5Hash")
    if gcs_md5:
        return f"md5:{base64.b64decode(gcs_md5).hex()}"
    content_settings = info.get("content_settings") or {}
    azure_md5 = (
        content_settings.get("content_md5")
        if isinstance(content_settings, dict)
        else getattr(content_settings, "content_md5", None)
    )
    if azure_md5:
        return f"md5:{bytes(azure_md5).hex()}"
    etag = str(info.get("ETag") or info.get("etag") or "").strip('"')
    if MD5_HEX.fullmatch(etag):
        return f"md5:{etag}"
    return f"etag:{etag}" if etag else None


async def _list_page(
    cloud: BucketCloud, fs: Any, bucket: str, prefix: str, token: str | None
) -> Page:
    return await cloud.list_page(fs, bucket, prefix, token, LISTING_PAGE)


# How each bucket store is listed, page by page (its cloud's `list_page`, LISTING_PAGE keys at
# a time); a local folder is walked on disk instead.
PAGE_LISTERS: dict[str, Callable[[Any, str, str, str | None], Awaitable[Page]]] = {
    cloud.scheme: partial(_list_page, cloud) for cloud in BUCKET_CLOUDS.values()
}


def _first_line(exc: BaseException) -> str:
    return (str(exc) or type(exc).__name__).splitlines()[0][:200]


def _failure_kind(exc: BaseException) -> str:
    """credentials | missing (bucket or object) | unreachable (endpoint) | other."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, PermissionError) or any(code in text for code in AUTH_ERRORS):
        return "credentials"
    if isinstance(exc, FileNotFoundError) or any(code in text for code in MISSING_BUCKET_ERRORS):
        return "missing"
    if "connect" in text.lower() or "Name or service not known" in text:
        return "unreachable"
    return "other"


def _empty_range(exc: BaseException) -> bool:
    """Whether a read from byte 0 failed as HTTP 416, which means the object is empty: a
    range has nothing to select in it (gcsfs and adlfs keep the status, s3fs an EINVAL)."""
    if 416 in (getattr(exc, "status_code", None), getattr(exc, "code", None)):
        return True
    return (
        isinstance(exc, OSError)
        and exc.errno == errno.EINVAL
        and "range is not satisfiable" in str(exc)
    )


def _local_entries(base: str) -> list[dict[str, Any]]:
    """The files under a local folder, in path order, as listing entries.

    Linked folders are not walked (a link to `/` would list the whole disk): they are
    listed as entries of their own, which are refused like FIFOs and devices.
    """
    entries = []
    for folder, subfolders, files in os.walk(base):
        for name in subfolders:
            if os.path.islink(path := os.path.join(folder, name)):
                entries.append({"name": path, "size": 0, "type": "a link to a folder"})
        for name in files:
            path = os.path.join(folder, name)
            try:
                status = os.stat(path)  # a symlink's target
            except OSError:
                entries.append({"name": path, "size": 0, "type": "a broken link"})
                continue
            kind = "file" if stat.S_ISREG(status.st_mode) else "a FIFO, device or socket"
            entries.append({"name": path, "size": status.st_size, "type": kind})
    return sorted(entries, key=lambda entry: entry["name"])


class ObjectStore:
    """Lists, reads and writes the items of one `DataSource`."""

    def __init__(self, source: DataSource, storage_options: dict[str, Any] | None = None):
        self.source = source
        # What listed paths are relative to: computed once, not per object listed.
        self._dataset_path = fsspec_path(source.dataset_uri).rstrip("/")
        self.cloud = cloud_of(source.root_uri)
        options = {**self.cloud.storage_options(source), **(storage_options or {})}
        # fsspec caches instances by options, not by the credentials it read from the
        # environment: a cached client could keep using keys that have since changed.
        try:
            self.fs: fsspec.AbstractFileSystem = fsspec.filesystem(
                source.protocol, skip_instance_cache=True, **options
            )
        except Exception as exc:  # e.g. adlfs refuses to start without an account
            raise self._guard("open", exc) from exc

    # -- paths -------------------------------------------------------------------------
    def _path(self, uri: str) -> str:
        return fsspec_path(uri)

    def _uri(self, path: str) -> str:
        return path if self.source.protocol == "file" else f"{self.source.protocol}://{path}"

    def uri_for(self, key: str) -> str:
        return f"{self.source.dataset_uri}/{key}"

    def label_studio_uri(self, obj_uri: str) -> str:
        """How a task refers to the object so Label Studio can show it to annotators."""
        if self.source.protocol == "file":
            # Served by Label Studio's local-files storage, relative to its document root.
            relative = PurePosixPath(obj_uri).relative_to(self.source.root_uri)
            return f"/data/local-files/?d={quote(str(relative))}"
        return to_label_studio_uri(obj_uri)

    # -- failures ----------------------------------------------------------------------
    def _guard(self, action: str, exc: Exception) -> StorageError:
        where = self.source.dataset_uri
        if self.source.endpoint_url:
            where += f" (endpoint {self.source.endpoint_url})"
        kind = _failure_kind(exc)
        stand_in = self.cloud.stand_in
        if kind == "credentials":
            hint = f"check {self.cloud.credentials_hint}"
        elif kind == "missing":
            hint = f"create it or set {self.cloud.bucket_setting} / LOOP_DATASET"
        elif kind == "unreachable" and self.source.endpoint_url:
            hint = "is the server up? (`python run.py up` starts the local one)"
        elif kind == "unreachable":
            hint = "no route to the cloud from here?" + (
                f" For the local stand-in set {stand_in.variable}=true" if stand_in else ""
            )
        else:
            hint = "check the URI and credentials"
        return StorageError(f"Cannot {action} {where}: {_first_line(exc)} ({hint})")

    def _retrying(self, what: str, call: Callable[[], T]) -> T:
        """`call()`, tried again after a pause while it fails in a way that may pass (not
        credentials, a missing bucket or a refusal), up to ATTEMPTS times in all."""
        attempt = 1
        while True:
            try:
                return call()
            except UnreadableObject:
                raise
            except Exception as exc:
                if attempt == ATTEMPTS or _failure_kind(exc) in ("credentials", "missing"):
                    raise
                logger.info("Retrying %s (attempt %d): %s", what, attempt + 1, _first_line(exc))
            time.sleep(RETRY_DELAY * 2 ** (attempt - 1))
            attempt += 1

    # -- listing -----------------------------------------------------------------------
    def list_batches(self) -> list[str]:
        """Names of the `batch_N` folders under the dataset, in numeric order."""
        try:
            entries = self.fs.ls(self._path(self.source.dataset_uri), detail=True, refresh=True)
        except Exception as exc:
            raise self._guard("list", exc) from exc
        names = [PurePosixPath(e["name"]).name for e in entries if e.get("type") == "directory"]
        return sorted((n for n in names if BATCH_PATTERN.match(n)), key=batch_sort_key)

    def list_batch(self, batch: str, suffixes: frozenset[str] = IMAGE_SUFFIXES) -> BatchListing:
        """The objects of one batch whose names end in `suffixes`, with their content
        fingerprints; the other keys are listed as skipped."""
        listing = BatchListing(batch=batch)
        for page in self.iter_batch(batch, suffixes):
            listing.objects += page.objects
            listing.skipped += page.skipped
            listing.problems += page.problems
        return listing

    def iter_batch(
        self, batch: str, suffixes: frozenset[str] = IMAGE_SUFFIXES
    ) -> Iterator[BatchListing]:
        """`list_batch`, page by page as the store lists them (in key order), so a caller can
        import one page while the next ones are listed.

        A page that keeps failing after some were listed ends the listing there: the last
        page says so in its `problems`, and the caller keeps what was listed (a re-run lists
        the batch again and adds only what is missing). A failure before anything was
        listed raises.
        """
        base = self._path(self.uri_for(batch))
        pages = self._listing_pages(base)
        listed = 0
        while True:
            try:
                infos = next(pages, None)
            except Exception as exc:
                error = self._guard("list", exc)
                if not listed:
                    raise error from exc
                cut_short = (
                    f"the listing of {batch} stopped after {listed} keys ({error}): the rest "
                    f"of {batch} was not synced; `run.py <cloud> --inference --batch {batch}` "
                    "adds it"
                )
                logger.warning("%s", cut_short)
                yield BatchListing(batch=batch, problems=[cut_short])
                return
            if infos is None:
                return
            listed += len(infos)
            page = BatchListing(batch=batch)
            for info in infos:
                path = info["name"]
                key = self._key(path)
                # Not PurePosixPath(path).suffix: pathlib (3.11) interns every name it parses,
                # and that table would grow by one entry per object listed.
                if posixpath.splitext(path)[1].lower() not in suffixes:
                    page.skipped.append(key)
                    continue
                try:
                    page.objects.append(self._stored_object(info, key, batch))
                except UnreadableObject as exc:
                    page.problems.append(f"{key}: {exc}")
            yield page

    def _key(self, path: str) -> str:
        """A listed path relative to the dataset."""
        prefix = self._dataset_path
        return path[len(prefix) + 1 :] if path.startswith(prefix) else path

    def _stored_object(self, info: dict[str, Any], key: str, batch: str) -> StoredObject:
        """A listed object, unless it is one the loop refuses to read."""
        uri = self._uri(info["name"])
        size = int(info.get("size") or 0)
        if info.get("type", "file") != "file":
            raise RefusedObject(uri, f"not a regular file but {info['type']}")
        if size > self.source.max_item_bytes:
            raise too_big(uri, self.source.max_item_bytes, size)
        content_hash = _content_hash(info) or self._hash_file(uri)
        return StoredObject(uri=uri, key=key, batch=batch, content_hash=content_hash, size=size)

    def _listing_pages(self, base: str) -> Iterator[list[dict[str, Any]]]:
        """The listing entries under `base`, in pages of up to LISTING_PAGE keys fetched as
        they are needed (a page that fails is retried); a local folder in one page."""
        list_page = PAGE_LISTERS.get(self.source.protocol)
        if list_page is None:
            yield _local_entries(base)
            return
        bucket, _, prefix = base.partition("/")
        token: str | None = None
        while True:
            fetch = partial(
                fsspec.asyn.sync,
                self.fs.loop,
                list_page,
                self.fs,
                bucket,
                f"{prefix.rstrip('/')}/",
                token,
            )
            entries, token = self._retrying(f"the listing of {base}", fetch)
            # Zero-byte "folder" markers some tools create are no items.
            page = [entry for entry in entries if not entry["name"].endswith("/")]
            if page:
                yield page
            if not token:
                return

    def _hash_file(self, uri: str) -> str:
        return f"md5:{hashlib.md5(self.read_bytes(uri), usedforsecurity=False).hexdigest()}"

    def ensure_bucket(self) -> None:
        """Creates the bucket (or container, or folder) if it does not exist yet."""
        root = self._path(self.source.root_uri)
        try:
            if not self.fs.exists(root):
                self.fs.mkdir(root)
        except Exception as exc:
            raise self._guard("create", exc) from exc

    # -- bytes -------------------------------------------------------------------------
    def read_bytes(self, uri: str) -> bytes:
        """The bytes of an object under the dataset, at most `max_item_bytes` of them; a read
        that fails in a way that may pass is retried.

        Raises `UnreadableObject` when this object is refused, gone or keeps failing (the
        others may still be read), `StorageError` when the store cannot be used at all
        (credentials, bucket, endpoint).
        """
        path = confined_path(uri, self.source.protocol, self.source.dataset_uri)
        try:
            return self._retrying(f"reading {uri}", partial(self._read, uri, path))
        except UnreadableObject:
            raise
        except FileNotFoundError as exc:
            raise ObjectGone(f"{uri} is gone: it was deleted after it was listed") from exc
        except Exception as exc:
            if _failure_kind(exc) != "other":
                raise self._guard(f"read {uri} from", exc) from exc
            raise UnreadableObject(
                f"Cannot read {uri} ({_first_line(exc)}), tried {ATTEMPTS} times: check the object"
            ) from exc

    def _read(self, uri: str, path: str) -> bytes:
        limit = self.source.max_item_bytes
        if self.source.protocol == "file":
            return read_local_file(path, self.source.dataset_uri, limit)
        # One byte over the limit tells an object that is too big without reading it all.
        try:
            data: bytes = self.fs.cat_file(path, start=0, end=limit + 1)
        except Exception as exc:
            if not _empty_range(exc):
                raise
            return b""
        if len(data) > limit:
            raise too_big(uri, limit)
        return data

    def read_many(
        self, uris: Iterable[str], concurrency: int = 16
    ) -> Iterator[tuple[str, bytes | UnreadableObject]]:
        """Reads objects concurrently (bucket latency dominates), in input order, as the
        caller consumes them: at most `4 * concurrency` reads run ahead of it, so memory
        stays flat however many objects there are.

        An object that cannot be read (refused, deleted since it was listed, or failing
        after retries) yields its `UnreadableObject`, for the caller to skip and report,
        instead of failing the others; a store that cannot be used at all raises.
        """

        def read(uri: str) -> bytes | UnreadableObject:
            try:
                return self.read_bytes(uri)
            except UnreadableObject as exc:
                return exc

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            pending: deque[tuple[str, Future[bytes | UnreadableObject]]] = deque()
            for uri in uris:
                pending.append((uri, pool.submit(read, uri)))
                if len(pending) == 4 * concurrency:
                    done, reading = pending.popleft()
                    yield done, reading.result()
            while pending:
                done, reading = pending.popleft()
                yield done, reading.result()

    def write_bytes(self, key: str, data: bytes) -> str:
        uri = self.uri_for(key)
        path = self._path(uri)
        try:
            if self.source.protocol == "file":
                self.fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)
            self.fs.pipe_file(path, data)
        except Exception as exc:
            raise self._guard("write to", exc) from exc
        return uri
