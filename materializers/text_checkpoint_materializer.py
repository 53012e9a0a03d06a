"""Stores a `TextCheckpoint` in any artifact store: the files `save_pretrained` wrote
(config, safetensors weights, tokenizer) under `files/`, plus `checkpoint.json`."""

from __future__ import annotations

import json
import os
from typing import Any, ClassVar

from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.metadata.metadata_types import MetadataType

from annotation_loop.text.checkpoint import TextCheckpoint

CONFIG_FILE = "checkpoint.json"
FILES_DIR = "files"


class TextCheckpointMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (TextCheckpoint,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def load(self, data_type: type[Any]) -> TextCheckpoint:
        with self.artifact_store.open(os.path.join(self.uri, CONFIG_FILE), "rb") as handle:
            config = json.loads(handle.read())
        files = {}
        for name in config.pop("file_names"):
            with self.artifact_store.open(os.path.join(self.uri, FILES_DIR, name), "rb") as h:
                files[name] = h.read()
        return TextCheckpoint(**config, files=files)

    def save(self, data: TextCheckpoint) -> None:
        for name, content in data.files.items():
            path = os.path.join(self.uri, FILES_DIR, name)
            self.artifact_store.makedirs(os.path.dirname(path))
            with self.artifact_store.open(path, "wb") as handle:
                handle.write(content)
        config = {
            "head": data.head,
            "base_model": data.base_model,
            "labels": data.labels,
            "max_length": data.max_length,
            "stride": data.stride,
            "file_names": sorted(data.files),
        }
        with self.artifact_store.open(os.path.join(self.uri, CONFIG_FILE), "wb") as handle:
            handle.write(json.dumps(config).encode())

    def extract_metadata(self, data: TextCheckpoint) -> dict[str, MetadataType]:
        return {
            "head": data.head,
            "base_model": data.base_model,
            "labels": data.labels,
            "max_length": data.max_length,
            "size_bytes": sum(len(content) for content in data.files.values()),
        }
