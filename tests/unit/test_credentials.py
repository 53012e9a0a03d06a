import json

import pytest

from annotation_loop.clouds.credentials import (
    azure_account,
    is_stand_in,
    label_studio_environment,
    parse_azure_connection_string,
    read_service_account_json,
)
from annotation_loop.errors import ConfigurationError
from annotation_loop.settings import Settings
from annotation_loop.zenml_integration.stacks import cloud_credentials

SERVICE_ACCOUNT = {
    "type": "service_account",
    "project_id": "p",
    "private_key": "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n",
    "client_email": "loop@p.iam.gserviceaccount.com",
    "token_uri": "https://oauth2.googleapis.com/token",
}


def test_service_account_key_is_read_and_checked(tmp_path):
    good = tmp_path / "key.json"
    good.write_text(json.dumps(SERVICE_ACCOUNT))
    assert json.loads(read_service_account_json(good)) == SERVICE_ACCOUNT

    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "service_account",')
    user_creds = tmp_path / "user.json"
    user_creds.write_text(json.dumps({"type": "authorized_user"}))
    partial = tmp_path / "partial.json"
    partial.write_text(json.dumps({**SERVICE_ACCOUNT, "private_key": ""}))
    cases = [
        (tmp_path / "missing.json", "cannot be read"),
        (broken, "not valid JSON"),
        (user_creds, "not a service-account key"),
        (partial, "lacks private_key"),
    ]
    for path, message in cases:
        with pytest.raises(ConfigurationError, match=message) as exc:
            read_service_account_json(path)
        assert "\n" not in str(exc.value) and "gcloud iam service-accounts keys create" in str(
            exc.value
        )


def test_azure_connection_string_needs_a_credential():
    good = "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=abc==;EndpointSuffix=x.net"
    assert parse_azure_connection_string(good)["AccountKey"] == "abc=="
    with pytest.raises(ConfigurationError, match="no AccountKey or SharedAccessSignature"):
        parse_azure_connection_string("DefaultEndpointsProtocol=https;AccountName=acct")
    with pytest.raises(ConfigurationError, match="no AccountName"):
        parse_azure_connection_string("garbage")
    assert azure_account({"AZURE_STORAGE_CONNECTION_STRING": good}).name == "acct"
    assert (
        azure_account({"AZURE_STORAGE_ACCOUNT_NAME": "n", "AZURE_STORAGE_ACCOUNT_KEY": "k"}).key
        == "k"
    )
    assert azure_account({}) is None


def test_cloud_credentials_validate_before_anything_is_written(tmp_path):
    bad_key = tmp_path / "bad.json"
    bad_key.write_text("not json")
    with pytest.raises(ConfigurationError):
        cloud_credentials("gcp", Settings(google_application_credentials=bad_key))
    with pytest.raises(ConfigurationError):
        cloud_credentials(
            "azure", Settings(azure_storage_connection_string="AccountName=a;EndpointSuffix=x")
        )
    local = Settings(local_azure=True)
    assert "connection_string" in cloud_credentials("azure", local)
    assert cloud_credentials("gcp", Settings()) == {}


def test_label_studio_gets_its_read_only_keys_in_place_of_the_loops():
    loop = {"AWS_ACCESS_KEY_ID": "loop-id", "AWS_SECRET_ACCESS_KEY": "loop-secret"}
    env, read_only = label_studio_environment(loop, "s3")
    assert (env["AWS_ACCESS_KEY_ID"], read_only) == ("loop-id", False)

    own = {
        **loop,
        "LOOP_LABEL_STUDIO_AWS_ACCESS_KEY_ID": "ls-id",
        "LOOP_LABEL_STUDIO_AWS_SECRET_ACCESS_KEY": "ls-secret",
    }
    env, read_only = label_studio_environment(own, "s3")
    assert read_only
    assert (env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"]) == ("ls-id", "ls-secret")

    key_file = {"LOOP_LABEL_STUDIO_GOOGLE_APPLICATION_CREDENTIALS": "/keys/ls.json"}
    env, read_only = label_studio_environment(key_file, "gs")
    assert read_only and env["GOOGLE_APPLICATION_CREDENTIALS"] == "/keys/ls.json"
    # Azure has no read-only option in Label Studio 1.23; S3's variables do not leak into it.
    assert label_studio_environment(own, "az")[1] is False


def test_half_of_label_studios_key_pair_is_refused():
    with pytest.raises(ConfigurationError, match="set both") as error:
        label_studio_environment({"LOOP_LABEL_STUDIO_AWS_ACCESS_KEY_ID": "ls-id"}, "s3")
    assert "\n" not in str(error.value)


def test_only_loopback_endpoints_are_stand_ins():
    assert is_stand_in("http://127.0.0.1:8333")
    assert is_stand_in("http://localhost:4443")
    assert is_stand_in("http://127.0.0.1:10000/devstoreaccount1")
    assert not is_stand_in(None)  # the cloud itself
    assert not is_stand_in("https://minio.internal:9000")
    assert not is_stand_in("https://acct.blob.core.windows.net")
