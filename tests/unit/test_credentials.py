import json

import pytest
from pydantic import SecretStr

from annotation_loop.clouds import get_cloud
from annotation_loop.clouds.azure import AzureAccount, azure_account, parse_azure_connection_string
from annotation_loop.clouds.base import is_stand_in
from annotation_loop.clouds.gcp import read_service_account_json
from annotation_loop.errors import ConfigurationError
from annotation_loop.settings import Settings

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
    account = azure_account(Settings(azure_storage_connection_string=SecretStr(good)))
    assert account is not None and account.name == "acct" and not account.emulated
    by_name = Settings(azure_storage_account_name="n", azure_storage_account_key=SecretStr("k"))
    assert azure_account(by_name) == AzureAccount("n", "k")
    sas = "AccountName=acct;SharedAccessSignature=sv=1;BlobEndpoint=https://a.blob.core.windows.net"
    assert azure_account(Settings(azure_storage_connection_string=SecretStr(sas))) is None
    emulator = azure_account(Settings(local_azure=True))
    assert emulator is not None and emulator.emulated


def test_artifact_store_credentials_are_validated_before_anything_is_written(tmp_path):
    bad_key = tmp_path / "bad.json"
    bad_key.write_text("not json")
    with pytest.raises(ConfigurationError):
        get_cloud("gcp").artifact_store(Settings(google_application_credentials=bad_key))
    with pytest.raises(ConfigurationError):
        get_cloud("azure").artifact_store(
            Settings(azure_storage_connection_string="AccountName=a;EndpointSuffix=x")
        )
    local = Settings(local_azure=True)
    assert "connection_string" in get_cloud("azure").artifact_store(local).secret_values
    assert get_cloud("gcp").artifact_store(Settings()).secret_values == {}


def test_only_loopback_endpoints_are_stand_ins():
    assert is_stand_in("http://127.0.0.1:8333")
    assert is_stand_in("http://localhost:4443")
    assert is_stand_in("http://127.0.0.1:10000/devstoreaccount1")
    assert not is_stand_in(None)  # the cloud itself
    assert not is_stand_in("https://minio.internal:9000")
    assert not is_stand_in("https://acct.blob.core.windows.net")
