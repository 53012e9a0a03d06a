"""The raw items: a prefix of `batch_N/` folders in a bucket (or a local folder), via fsspec.

Identity comes from the listing (S3 ETag, GCS MD5, Azure MD5/ETag) so a sync never
downloads objects; only local folders, which have no such field, are hashed on disk.
"""

from __future__ import annotations

import base64
import hashlib
import posixpath
import re
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

import fsspec
import fsspec.asyn
from pydantic import BaseModel

from annotation_loop.errors import StorageError
from annotation_loop.uris import fsspec_path, to_label_studio_uri

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg"})
BATCH_PATTERN = re.compile(r"^batch_(\d+)$")
MD5_HEX = re.compile(r"[0-9a-f]{32}")
# Keys per listing request (S3's maximum): a sync holds a few pages, never a whole listing.
LISTING_PAGE = 1000

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
LOCAL_STAND_IN_SETTING = {"s3": "LOOP_LOCAL_S3", "gs": "LOOP_LOCAL_GCS", "az": "LOOP_LOCAL_AZURE"}
MISSING_BUCKET_ERRORS = (
    "NoSuchBucket",
    "ContainerNotFound",
    "The specified container does not exist",
)
CREDENTIALS_HINT = {
    "s3": "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY",
    "gs": "GOOGLE_APPLICATION_CREDENTIALS (a service-account JSON key file)",
    "az": "AZURE_STORAGE_CONNECTION_STRING, or AZURE_STORAGE_ACCOUNT_NAME + _ACCOUNT_KEY",
}
BUCKET_SETTING = {"s3": "LOOP_S3_BUCKET", "gs": "LOOP_GCS_BUCKET", "az": "LOOP_AZURE_CONTAINER"}


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

    @property
    def protocol(self) -> str:
        return self.root_uri.split("://", 1)[0] if "://" in self.root_uri else "file"

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


async def _next_page(entries: AsyncIterator[dict[str, Any]]) -> list[dict[str, Any]]:
    """Up to LISTING_PAGE more entries of an async listing (empty at its end); skips the
    zero-byte "folder" markers some tools create."""
    page: list[dict[str, Any]] = []
    async for entry in entries:
        if not entry["name"].endswith("/"):
            page.append(entry)
        if len(page) == LISTING_PAGE:
            break
    return page


def _s3_entries(fs: Any, bucket: str, prefix: str) -> AsyncIterator[dict[str, Any]]:
    # s3fs pages through ListObjectsV2 (1,000 keys a request) and yields entries as they come.
    return fs._iterdir(bucket, prefix=prefix, delimiter="")


async def _gcs_entries(fs: Any, bucket: str, prefix: str) -> AsyncIterator[dict[str, Any]]:
    # gcsfs's own listing collects every page before it returns: page through the JSON API.
    token = None
    while True:
        page = await fs._call(
            "GET",
            "b/{}/o",
            bucket,
            prefix=prefix,
            maxResults=LISTING_PAGE,
            pageToken=token,
            json_out=True,
        )
        for entry in page.get("items", []):
            yield entry | {"name": f"{bucket}/{entry['name']}"}
        token = page.get("nextPageToken")
        if not token:
            return


async def _azure_entries(fs: Any, bucket: str, prefix: str) -> AsyncIterator[dict[str, Any]]:
    # adlfs's find collects the whole listing too; the SDK's list_blobs pages lazily.
    container = fs.service_client.get_container_client(bucket)
    blobs = container.list_blobs(
        name_starts_with=prefix, include=["metadata"], results_per_page=LISTING_PAGE
    )
    async for blob in blobs:
        if (blob.metadata or {}).get("hdi_isfolder") == "true":  # a Data Lake folder
            continue
        yield {
            "name": f"{bucket}/{blob.name}",
            "size": blob.size,
            "etag": blob.etag,
            "content_settings": blob.content_settings,
        }


STREAMED_LISTINGS = {"s3": _s3_entries, "gs": _gcs_entries, "az": _azure_entries}


def _session_without_timestamps() -> Any:
    """An aiobotocore session whose clients leave timestamps as the strings S3 sent.

    botocore parses every listed key's LastModified into a datetime, which is half the
    client's CPU time in a large listing; nothing here reads it.
    """
    from aiobotocore.session import AioSession

    session = AioSession()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    return session


class ObjectStore:
    """Lists, reads and writes the items of one `DataSource`."""

    def __init__(self, source: DataSource, storage_options: dict[str, Any] | None = None):
        self.source = source
        options = dict(storage_options or {})
        if source.protocol == "s3":
            options.setdefault("session", _session_without_timestamps())
            client_kwargs = options.setdefault("client_kwargs", {})
            client_kwargs.setdefault("region_name", source.region)
            if source.endpoint_url:
                client_kwargs.setdefault("endpoint_url", source.endpoint_url)
        elif source.protocol == "gs" and source.endpoint_url:
            # An emulator has no auth; real GCS uses GOOGLE_APPLICATION_CREDENTIALS.
            options.setdefault("endpoint_url", source.endpoint_url)
            options.setdefault("token", "anon")
        # Azure (adlfs) reads AZURE_STORAGE_CONNECTION_STRING / _ACCOUNT_NAME / _KEY itself.
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

    # -- listing -----------------------------------------------------------------------
    def _guard(self, action: str, exc: Exception) -> StorageError:
        where = self.source.dataset_uri
        if self.source.endpoint_url:
            where += f" (endpoint {self.source.endpoint_url})"
        text = str(exc) or type(exc).__name__
        protocol = self.source.protocol
        if isinstance(exc, PermissionError) or any(code in text for code in AUTH_ERRORS):
            hint = f"check {CREDENTIALS_HINT.get(protocol, 'the credentials')}"
        elif any(code in text for code in MISSING_BUCKET_ERRORS) or isinstance(
            exc, FileNotFoundError
        ):
            hint = (
                f"create it or set {BUCKET_SETTING.get(protocol, 'LOOP_STATE_DIR')} / LOOP_DATASET"
            )
        elif "connect" in text.lower() or "Name or service not known" in text:
            hint = (
                "is the server up? (`python run.py up` starts the local one)"
                if self.source.endpoint_url
                else "no route to the cloud from here? For the local stand-in set "
                f"{LOCAL_STAND_IN_SETTING.get(protocol, 'LOOP_LOCAL_S3')}=true"
            )
        else:
            hint = "check the URI and credentials"
        first_line = text.splitlines()[0][:200]
        return StorageError(f"Cannot {action} {where}: {first_line} ({hint})")

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
        return listing

    def iter_batch(
        self, batch: str, suffixes: frozenset[str] = IMAGE_SUFFIXES
    ) -> Iterator[BatchListing]:
        """`list_batch`, page by page as the store lists them (in key order), so a caller can
        import one page while the next ones are listed."""
        base = self._path(self.uri_for(batch))
        dataset_path = self._path(self.source.dataset_uri).rstrip("/")
        pages = self._listing_pages(base)
        while True:
            try:
                infos = next(pages, None)
            except Exception as exc:
                raise self._guard("list", exc) from exc
            if infos is None:
                return
            page = BatchListing(batch=batch)
            for info in infos:
                path = info["name"]
                key = path[len(dataset_path) + 1 :] if path.startswith(dataset_path) else path
                # Not PurePosixPath(path).suffix: pathlib (3.11) interns every name it parses,
                # and that table would grow by one entry per object listed.
                if posixpath.splitext(path)[1].lower() not in suffixes:
                    page.skipped.append(key)
                    continue
                page.objects.append(
                    StoredObject(
                        uri=self._uri(path),
                        key=key,
                        batch=batch,
                        content_hash=_content_hash(info) or self._hash_file(path),
                        size=int(info.get("size") or 0),
                    )
                )
            yield page

    def _listing_pages(self, base: str) -> Iterator[list[dict[str, Any]]]:
        """The listing entries under `base`, in pages of up to LISTING_PAGE keys fetched as
        they are needed; a local folder in one page."""
        entries_of = STREAMED_LISTINGS.get(self.source.protocol)
        if entries_of is None:
            found = self.fs.find(base, detail=True, withdirs=False)
            yield [found[path] | {"name": path} for path in sorted(found)]
            return
        bucket, _, prefix = base.partition("/")
        entries = entries_of(self.fs, bucket, f"{prefix.rstrip('/')}/")
        while page := fsspec.asyn.sync(self.fs.loop, _next_page, entries):
            yield page

    def _hash_file(self, path: str) -> str:
        digest = hashlib.md5(usedforsecurity=False)
        with self.fs.open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return f"md5:{digest.hexdigest()}"

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
        try:
            data: bytes = self.fs.cat_file(self._path(uri))
        except Exception as exc:
            raise self._guard(f"read {uri} from", exc) from exc
        return data

    def read_many(
        self, uris: Iterable[str], concurrency: int = 16
    ) -> Iterator[tuple[str, bytes | None]]:
        """Reads objects concurrently (bucket latency dominates), in input order, as the
        caller consumes them: at most `4 * concurrency` reads run ahead of it, so memory
        stays flat however many objects there are.

        An object that vanished since it was listed yields None instead of failing the
        whole batch; any other storage failure (credentials, endpoint) raises.
        """

        def read_or_none(uri: str) -> bytes | None:
            try:
                return self.read_bytes(uri)
            except StorageError as exc:
                if isinstance(exc.__cause__, FileNotFoundError):
                    return None
                raise

        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            pending: deque[tuple[str, Future[bytes | None]]] = deque()
            for uri in uris:
                pending.append((uri, pool.submit(read_or_none, uri)))
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
