"""The `aws` cloud: Amazon S3, or an S3-compatible server (MinIO, the SeaweedFS stand-in)
when `s3_endpoint_url` is set."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import AliasChoices, BaseModel, Field, SecretStr

from annotation_loop.clouds.base import (
    ARTIFACTS_FOLDER,
    ArtifactStoreSpec,
    CloudName,
    Page,
    ReadOnlyCredentials,
    SourceConnection,
    StandIn,
    is_stand_in,
)
from annotation_loop.data.uris import split_uri
from annotation_loop.errors import ConfigurationError

if TYPE_CHECKING:
    from annotation_loop.data.storage import DataSource
    from annotation_loop.labelstudio import LabelStudioClient

# The stand-in's one identity (`weed mini` takes it from its environment).
DEMO_S3_ACCESS_KEY = "loop-demo-access-key"
DEMO_S3_SECRET_KEY = "loop-demo-secret-key"
LABEL_STUDIO_READ_ONLY = ReadOnlyCredentials(
    ("label_studio_aws_access_key_id", "label_studio_aws_secret_access_key"),
    "cloud_config/aws/iam-policy-label-studio-readonly.json",
)


class AwsSettings(BaseModel):
    """The `aws` cloud's settings (LOOP_S3_BUCKET, ...; credentials also under AWS's names)."""

    s3_bucket: str = "annotation-loop"
    s3_endpoint_url: str | None = None
    aws_access_key_id: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LOOP_AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID")
    )
    aws_secret_access_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("LOOP_AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
    )
    aws_region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("LOOP_AWS_REGION", "AWS_DEFAULT_REGION")
    )
    # The SeaweedFS stand-in that `run.py up` starts; `local_s3=true` points the cloud at it
    # (endpoint and demo keys), as `make demo CLOUD=aws` does.
    local_s3_port: int = 8333
    local_s3: bool = False
    # Label Studio's own read-only keys (cloud_config/aws/iam-policy-label-studio-readonly.json)
    # for the storage it presigns annotators' URLs with; without them it gets the loop's.
    label_studio_aws_access_key_id: SecretStr | None = None
    label_studio_aws_secret_access_key: SecretStr | None = None

    @property
    def local_s3_endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.local_s3_port}"


@dataclass(frozen=True)
class S3Source:
    """Label Studio's S3 source storage for a dataset."""

    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str
    access_key: str
    secret_key: str = field(repr=False)

    def connect(self, client: LabelStudioClient, project_id: int) -> int:
        return client.connect_s3_source(
            project_id,
            bucket=self.bucket,
            prefix=self.prefix,
            endpoint_url=self.endpoint_url,
            access_key=self.access_key,
            secret_key=self.secret_key,
            region=self.region,
        )


def _session_without_timestamps() -> Any:
    """An aiobotocore session whose clients leave timestamps as the strings S3 sent.

    botocore parses every listed key's LastModified into a datetime, which is half the
    client's CPU time in a large listing; nothing here reads it.
    """
    from aiobotocore.session import AioSession

    session = AioSession()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
    return session


def _label_studio_keys(settings: AwsSettings) -> tuple[str, str] | None:
    """Label Studio's own key pair, if set; half of one is refused."""
    key_id, secret = (
        settings.label_studio_aws_access_key_id,
        settings.label_studio_aws_secret_access_key,
    )
    if key_id and secret:
        return key_id.get_secret_value(), secret.get_secret_value()
    if key_id or secret:
        key_id_variable, secret_variable = LABEL_STUDIO_READ_ONLY.variables
        given, missing = (
            (key_id_variable, secret_variable) if key_id else (secret_variable, key_id_variable)
        )
        raise ConfigurationError(f"{given} is set without {missing}: set both, or neither")
    return None


class Aws:
    name: CloudName = "aws"
    scheme = "s3"
    stand_in: StandIn | None = StandIn(service="s3", setting="local_s3")
    bucket_setting = "LOOP_S3_BUCKET"
    credentials_hint = "AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
    label_studio_read_only: ReadOnlyCredentials | None = LABEL_STUDIO_READ_ONLY
    secret_name = "annotation-loop-s3"

    def bucket_uri(self, settings: AwsSettings) -> str:
        return f"s3://{settings.s3_bucket}"

    def endpoint_url(self, settings: AwsSettings) -> str | None:
        return settings.s3_endpoint_url

    def stand_in_settings(self, settings: AwsSettings) -> dict[str, Any]:
        return {
            "s3_endpoint_url": settings.local_s3_endpoint_url,
            "aws_access_key_id": SecretStr(DEMO_S3_ACCESS_KEY),
            "aws_secret_access_key": SecretStr(DEMO_S3_SECRET_KEY),
        }

    def _keys(self, settings: AwsSettings) -> tuple[str, str] | None:
        if settings.aws_access_key_id and settings.aws_secret_access_key:
            return (
                settings.aws_access_key_id.get_secret_value(),
                settings.aws_secret_access_key.get_secret_value(),
            )
        return None

    def artifact_store(self, settings: AwsSettings) -> ArtifactStoreSpec:
        client_kwargs: dict[str, Any] = {"region_name": settings.aws_region}
        if settings.s3_endpoint_url:
            client_kwargs["endpoint_url"] = settings.s3_endpoint_url
        keys = self._keys(settings)
        return ArtifactStoreSpec(
            flavor="s3",
            path=f"{self.bucket_uri(settings)}/{ARTIFACTS_FOLDER}",
            configuration={"client_kwargs": client_kwargs},
            secret_name=self.secret_name,
            secret_values=(
                {"aws_access_key_id": keys[0], "aws_secret_access_key": keys[1]} if keys else {}
            ),
        )

    def client_environment(self, settings: AwsSettings) -> dict[str, str]:
        keys = self._keys(settings)
        return {"AWS_ACCESS_KEY_ID": keys[0], "AWS_SECRET_ACCESS_KEY": keys[1]} if keys else {}

    def storage_options(self, source: DataSource) -> dict[str, Any]:
        client_kwargs: dict[str, Any] = {"region_name": source.region}
        if source.endpoint_url:
            client_kwargs["endpoint_url"] = source.endpoint_url
        return {"session": _session_without_timestamps(), "client_kwargs": client_kwargs}

    async def list_page(
        self, fs: Any, bucket: str, prefix: str, token: str | None, limit: int
    ) -> Page:
        request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "MaxKeys": limit}
        if token:
            request["ContinuationToken"] = token
        response = await fs._call_s3("list_objects_v2", **request)
        entries = [
            {
                "name": f"{bucket}/{item['Key']}",
                "size": item.get("Size", 0),
                "ETag": item.get("ETag"),
            }
            for item in response.get("Contents", [])
        ]
        truncated = response.get("IsTruncated")
        return entries, response.get("NextContinuationToken") if truncated else None

    def label_studio_source(self, source: DataSource, settings: AwsSettings) -> SourceConnection:
        own = _label_studio_keys(settings)
        keys = own or self._keys(settings)
        if keys is None:
            return SourceConnection(None, "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY are not set")
        _, bucket, _ = split_uri(source.root_uri)
        return SourceConnection(
            S3Source(
                bucket=bucket,
                prefix=source.dataset,
                endpoint_url=source.endpoint_url,
                region=source.region,
                access_key=keys[0],
                secret_key=keys[1],
            ),
            write_keys_warning=(
                None
                if own or is_stand_in(source.endpoint_url)
                else LABEL_STUDIO_READ_ONLY.write_keys_warning()
            ),
            check_cors=source.endpoint_url is None,
        )

    def missing_cors_fix(self, source: DataSource, settings: AwsSettings) -> str | None:
        import boto3
        from botocore.exceptions import ClientError

        keys = self._keys(settings)
        s3 = boto3.client(
            "s3",
            endpoint_url=source.endpoint_url,
            region_name=source.region,
            # None: boto3's own chain (environment, instance profile).
            aws_access_key_id=keys[0] if keys else None,
            aws_secret_access_key=keys[1] if keys else None,
        )
        _, bucket, _ = split_uri(source.root_uri)
        try:
            rules = s3.get_bucket_cors(Bucket=bucket).get("CORSRules", [])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchCORSConfiguration":
                raise
            rules = []
        if rules:
            return None
        return (
            f"aws s3api put-bucket-cors --bucket {bucket} "
            "--cors-configuration file://cloud_config/aws/cors.json"
        )


AWS = Aws()
