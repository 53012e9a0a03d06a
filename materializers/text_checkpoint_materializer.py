"""Stores a `TextCheckpoint` in any artifact store: the files `save_pretrained` wrote
(config, safetensors weights, tokenizer) under `files/`, plus `checkpoint.json`.

Only data formats are stored: weights as safetensors (never a pickled `pytorch_model.bin`),
configs and tokenizers as JSON or text, so loading a checkpoint runs none of its content.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.metadata.metadata_types import MetadataType

from annotation_loop.text.checkpoint import Head, TextCheckpoint
from materializers.artifact_files import files, read_fields
from materializers.model_files import FILES_DIR, read_model_files, write_model_files

CONFIG_FILE = "checkpoint.json"
FOLDER = files("a text checkpoint", [CONFIG_FILE, FILES_DIR])
# What `save_pretrained` writes for the encoders and tokenizers the loop fine-tunes.
MODEL_FILES = files(
    "a text checkpoint's files/ folder",
    [
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "model.safetensors.index.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "chat_template.jinja",
        "vocab.txt",
        "vocab.json",
        "merges.txt",
        "spiece.model",
        "sentencepiece.bpe.model",
        "tokenizer.model",
    ],
    r"model-\d{5}-of-\d{5}\.safetensors",  # a large model's shards
)


class _Config(BaseModel):
    """`checkpoint.json`: the checkpoint's fields and the names of its model files."""

    model_config = ConfigDict(extra="forbid", strict=True)

    head: Head
    base_model: str
    labels: list[str]
    max_length: int
    stride: int
    file_names: list[str]


class TextCheckpointMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (TextCheckpoint,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def load(self, data_type: type[Any]) -> TextCheckpoint:
        FOLDER.check_folder(self.artifact_store, self.uri)
        config = read_fields(self.artifact_store, self.uri, CONFIG_FILE, _Config)
        content = read_model_files(self.artifact_store, self.uri, MODEL_FILES, config.file_names)
        fields = config.model_dump(exclude={"file_names"})
        return TextCheckpoint(**fields, files=content)

    def save(self, data: TextCheckpoint) -> None:
        write_model_files(self.artifact_store, self.uri, MODEL_FILES, data.files)
        config = _Config(
            head=data.head,
            base_model=data.base_model,
            labels=data.labels,
            max_length=data.max_length,
            stride=data.stride,
            file_names=sorted(data.files),
        )
        with self.artifact_store.open(os.path.join(self.uri, CONFIG_FILE), "wb") as handle:
            handle.write(config.model_dump_json().encode())

    def extract_metadata(self, data: TextCheckpoint) -> dict[str, MetadataType]:
        return {
            "head": data.head,
            "base_model": data.base_model,
            "labels": data.labels,
            "max_length": data.max_length,
            "size_bytes": sum(len(content) for content in data.files.values()),
        }
