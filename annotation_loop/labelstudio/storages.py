"""The import storages through which Label Studio shows annotators the raw items: one per
bucket prefix or folder, found again or created, never synced (the loop creates the tasks
itself).

Each kind only describes its storage (a `SourceStorage`); `Storages.connect_source` is the
one find-or-create path for all of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from annotation_loop.data.uris import is_loopback_url
from annotation_loop.labelstudio.transport import ApiArea

# Label Studio checks a new storage's bucket before it answers; for an unreachable Azure
# account the Azure SDK's retries alone take ~85 s.
STORAGE_CHECK_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class SourceStorage:
    """An import storage as Label Studio's API creates it."""

    kind: str  # the API's name for it: "s3", "gcs", "azure", "localfiles"
    body: dict[str, Any]  # the create request's fields, the project's aside
    place: tuple[str, ...]  # the fields of `body` that say where it reads
    failure: str  # what a refusal to create it means and what to do next

    def reads_from_same_place(self, storage: dict[str, Any]) -> bool:
        """Whether an existing storage (as the API lists it) reads where this one would."""
        return all(
            _trimmed(storage.get(field)) == _trimmed(self.body[field]) for field in self.place
        )


@dataclass(frozen=True)
class BucketKind:
    """How Label Studio's API names one cloud's storages and their items."""

    kind: str  # the API's name for the storage: /api/storages/<kind>/
    scheme: str  # the items' URIs: <scheme>://<bucket>/<key>
    bucket_field: str  # the API's name for the bucket


S3 = BucketKind("s3", "s3", "bucket")
GCS = BucketKind("gcs", "gs", "bucket")
AZURE_BLOB = BucketKind("azure", "azure-blob", "container")


def bucket_source(
    kind: BucketKind, bucket: str, prefix: str, settings: dict[str, Any], reach: str
) -> SourceStorage:
    """A storage on a bucket's prefix whose items are served by their URIs; `settings` are
    its credentials and options, `reach` what Label Studio must reach the bucket with."""
    prefix = prefix.strip("/")
    uri = f"{kind.scheme}://{bucket}/{prefix}"
    return SourceStorage(
        kind=kind.kind,
        body={
            "title": uri,
            kind.bucket_field: bucket,
            "prefix": f"{prefix}/" if prefix else "",
            "use_blob_urls": False,
            **settings,
        },
        place=(kind.bucket_field, "prefix"),
        # Label Studio refuses a prefix unless it lists at least one object there.
        failure=(
            f"Label Studio could not connect {uri}: it must reach {reach} and find at least "
            "one object under the prefix"
        ),
    )


class Storages(ApiArea):
    """The import storages of Label Studio's projects."""

    def connect_source(self, project_id: int, source: SourceStorage) -> int:
        """The id of the project's storage reading where `source` does, created if there is
        none; Label Studio refuses one whose bucket it cannot list, which raises
        `LabelStudioHTTPError` with `source.failure` as its message."""
        path = f"/api/storages/{source.kind}/"
        existing = self.transport.request(
            "GET", path, params={"project": project_id}, repeatable=True
        )
        for storage in existing:
            if source.reads_from_same_place(storage):
                return int(storage["id"])
        return self.transport.create(
            path,
            {"project": project_id, **source.body},
            timeout=STORAGE_CHECK_TIMEOUT_S,
            refusal=source.failure,
        )

    def connect_s3_source(
        self,
        project_id: int,
        *,
        bucket: str,
        prefix: str,
        endpoint_url: str | None,
        access_key: str,
        secret_key: str,
        region: str,
        presign: bool = True,
    ) -> int:
        """Resolves the tasks' s3:// URIs. A loopback `endpoint_url` is not sent: Label
        Studio's SSRF guard refuses it, and trusts its own `S3_ENDPOINT` environment variable
        instead (set by `run.py up`)."""
        settings: dict[str, Any] = {
            "aws_access_key_id": access_key,
            "aws_secret_access_key": secret_key,
            "region_name": region,
            "presign": presign,
        }
        if endpoint_url and not is_loopback_url(endpoint_url):
            settings["s3_endpoint"] = endpoint_url
            service = f"S3 at {endpoint_url}"
        else:
            service = "the S3 its S3_ENDPOINT names" if endpoint_url else "AWS S3"
        reach = f"{service} with these credentials"
        return self.connect_source(project_id, bucket_source(S3, bucket, prefix, settings, reach))

    def connect_gcs_source(
        self,
        project_id: int,
        *,
        bucket: str,
        prefix: str,
        credentials_json: str | None,
        presign: bool = True,
    ) -> int:
        """Resolves the tasks' gs:// URIs. `credentials_json` is a service-account key (the
        file's text); without it Label Studio uses its own application default credentials,
        or none when its STORAGE_EMULATOR_HOST names an emulator (with a key it would fetch a
        token from Google even for the emulator). Presigning needs a service-account key:
        with `presign=False` Label Studio serves the bytes itself, from its
        RESOLVER_PROXY_GCS_DOWNLOAD_URL (storage.googleapis.com unless set)."""
        settings = {"google_application_credentials": credentials_json, "presign": presign}
        reach = (
            "Google Cloud Storage (or the emulator its STORAGE_EMULATOR_HOST names) with these "
            "credentials"
        )
        return self.connect_source(project_id, bucket_source(GCS, bucket, prefix, settings, reach))

    def connect_azure_source(
        self,
        project_id: int,
        *,
        container: str,
        prefix: str,
        account_name: str,
        account_key: str,
        presign: bool = True,
        blob_endpoint: str | None = None,
    ) -> int:
        """Resolves the tasks' azure-blob:// URIs. Label Studio checks the container at
        https://<account>.blob.core.windows.net before it creates the storage. It builds its
        connection string by appending the key, so a `BlobEndpoint` added to the key points
        it elsewhere (Azurite): that is what `blob_endpoint` does. Presigned URLs always name
        the public endpoint, so use `presign=False` (Label Studio serves the bytes) with
        `blob_endpoint`."""
        endpoint = blob_endpoint or f"https://{account_name}.blob.core.windows.net"
        if blob_endpoint:
            account_key = f"{account_key};BlobEndpoint={blob_endpoint}"
        settings = {"account_name": account_name, "account_key": account_key, "presign": presign}
        reach = f"Azure Blob Storage at {endpoint} with this account name and key"
        source = bucket_source(AZURE_BLOB, container, prefix, settings, reach)
        return self.connect_source(project_id, source)

    def connect_local_source(self, project_id: int, path: Path) -> int:
        """Serves the files under `path`, which must exist and lie under the server's
        LOCAL_FILES_DOCUMENT_ROOT."""
        path_text = str(path.resolve())
        source = SourceStorage(
            kind="localfiles",
            body={"title": path.name, "path": path_text, "use_blob_urls": True},
            place=("path",),
            failure=(
                f"Label Studio could not connect the folder {path_text}: it must exist under "
                "the server's LOCAL_FILES_DOCUMENT_ROOT (`python run.py up` sets it)"
            ),
        )
        return self.connect_source(project_id, source)


def _trimmed(value: Any) -> str:
    return str(value or "").strip("/")
