import pytest

from annotation_loop.data.storage import DataSource, ObjectStore
from annotation_loop.data.uris import (
    from_label_studio_uri,
    fsspec_path,
    split_uri,
    to_label_studio_uri,
)
from annotation_loop.errors import StorageError
from annotation_loop.settings import Settings

KEYS = ["mnist/batch_1/00001.png", "my data/batch 2/ünï cödé 猫.PNG", "a/b%20c/d+e.jpg"]


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize(
    ("fsspec_uri", "label_studio_uri"),
    [
        ("s3://bucket/{key}", "s3://bucket/{key}"),
        ("gs://bucket/{key}", "gs://bucket/{key}"),
        ("az://container/{key}", "azure-blob://container/{key}"),
    ],
)
def test_round_trip_keeps_keys_verbatim(fsspec_uri, label_studio_uri, key):
    uri = fsspec_uri.format(key=key)
    assert to_label_studio_uri(uri) == label_studio_uri.format(key=key)
    assert from_label_studio_uri(to_label_studio_uri(uri)) == uri
    assert fsspec_path(uri) == uri.split("://", 1)[1]
    assert split_uri(uri)[2] == key


def test_abfs_and_gcs_aliases_map_to_label_studio_schemes():
    assert to_label_studio_uri("abfs://c/k.png") == "azure-blob://c/k.png"
    assert to_label_studio_uri("gcs://b/k.png") == "gs://b/k.png"


@pytest.mark.parametrize("bad", ["/local/path.png", "s3://", "ftp://host/file.png"])
def test_bad_uris_are_clear_errors(bad):
    with pytest.raises(StorageError):
        to_label_studio_uri(bad)


def test_object_store_uses_label_studio_uris_for_cloud_objects(monkeypatch):
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", Settings().local_azure_connection_string)
    store = ObjectStore(DataSource(root_uri="az://container", dataset="d"))
    assert store.label_studio_uri("az://container/d/batch_1/x y.png") == (
        "azure-blob://container/d/batch_1/x y.png"
    )
