"""Does the bucket let Label Studio's browser tab load its images? (CORS rules)

Annotators' browsers fetch presigned URLs straight from the bucket; without a CORS rule
for GET from the Label Studio origin, images stay blank. We only warn: fixing it needs
rights the loop should not have. The fix commands use the files in cloud_config/.
"""

from __future__ import annotations

import logging
import os

from annotation_loop.data.storage import DataSource
from annotation_loop.data.uris import split_uri

logger = logging.getLogger(__name__)


def missing_cors_fix(source: DataSource) -> str | None:
    """The command that adds the missing CORS rules, or None if the bucket has some."""
    _, bucket, _ = split_uri(source.root_uri)
    if source.protocol == "s3":
        import boto3
        from botocore.exceptions import ClientError

        s3 = boto3.client("s3", endpoint_url=source.endpoint_url, region_name=source.region)
        try:
            rules = s3.get_bucket_cors(Bucket=bucket).get("CORSRules", [])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchCORSConfiguration":
                raise
            rules = []
        fix = (
            f"aws s3api put-bucket-cors --bucket {bucket} "
            "--cors-configuration file://cloud_config/aws/cors.json"
        )
    elif source.protocol == "gs":
        from google.cloud import storage

        rules = list(storage.Client().get_bucket(bucket).cors or [])
        fix = f"gcloud storage buckets update gs://{bucket} --cors-file=cloud_config/gcp/cors.json"
    elif source.protocol == "az":
        from azure.storage.blob import BlobServiceClient

        service = BlobServiceClient.from_connection_string(
            os.environ["AZURE_STORAGE_CONNECTION_STRING"]
        )
        rules = list(service.get_service_properties().get("cors") or [])
        fix = (
            f"az storage cors add --services b --methods GET HEAD --origins <label-studio-url> "
            f"--account-name {service.account_name} (see cloud_config/azure/README.md)"
        )
    else:
        return None
    return None if rules else fix


def warn_if_cors_missing(source: DataSource) -> None:
    """Logs the fix when a real cloud bucket has no CORS rules; never fails the run."""
    try:
        fix = missing_cors_fix(source)
    except Exception as exc:  # a check we cannot make must not stop the loop
        logger.info("Could not read the CORS rules of %s: %s", source.root_uri, exc)
        return
    if fix:
        logger.warning(
            "%s has no CORS rules, so annotators' browsers cannot load its images: %s",
            source.root_uri,
            fix,
        )
