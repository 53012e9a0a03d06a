"""Stores a `TranscriptionCheckpoint` in any artifact store: `checkpoint.json`, plus for a
CTC model the files `save_pretrained` wrote (config, safetensors weights, processor) under
`files/`. A pocketsphinx checkpoint has no files: its model ships in its wheel.

Only data formats are stored: weights as safetensors (never a pickled `pytorch_model.bin`),
configs and vocabularies as JSON, so loading a checkpoint runs none of its content.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict
from zenml.enums import ArtifactType
from zenml.materializers.base_materializer import BaseMaterializer
from zenml.metadata.metadata_types import MetadataType

from annotation_loop.audio.checkpoint import Recogniser, TranscriptionCheckpoint
from materializers.artifact_files import files, read_fields
from materializers.model_files import FILES_DIR, read_model_files, write_model_files

CONFIG_FILE = "checkpoint.json"
FOLDER = files("a transcription checkpoint", [CONFIG_FILE, FILES_DIR])
# What `save_pretrained` writes for a CTC model and its processor.
MODEL_FILES = files(
    "a transcription checkpoint's files/ folder",
    [
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "model.safetensors.index.json",
        "preprocessor_config.json",
        "processor_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "special_tokens_map.json",
        "added_tokens.json",
        "vocab.json",
    ],
    r"model-\d{5}-of-\d{5}\.safetensors",  # a large model's shards
)


class _Config(BaseModel):
    """`checkpoint.json`: the checkpoint's fields and the names of its model files."""

    model_config = ConfigDict(extra="forbid", strict=True)

    recogniser: Recogniser
    base_model: str
    speech_label: str
    file_names: list[str]


class TranscriptionCheckpointMaterializer(BaseMaterializer):
    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (TranscriptionCheckpoint,)
    ASSOCIATED_ARTIFACT_TYPE: ClassVar[ArtifactType] = ArtifactType.MODEL

    def load(self, data_type: type[Any]) -> TranscriptionCheckpoint:
        FOLDER.check_folder(self.artifact_store, self.uri)
        config = read_fields(self.artifact_store, self.uri, CONFIG_FILE, _Config)
        content = read_model_files(self.artifact_store, self.uri, MODEL_FILES, config.file_names)
        return TranscriptionCheckpoint(
            config.recogniser, config.base_model, config.speech_label, content
        )

    def save(self, data: TranscriptionCheckpoint) -> None:
        write_model_files(self.artifact_store, self.uri, MODEL_FILES, data.files)
        config = _Config(
            recogniser=data.recogniser,
            base_model=data.base_model,
            speech_label=data.speech_label,
            file_names=sorted(data.files),
        )
        with self.artifact_store.open(os.path.join(self.uri, CONFIG_FILE), "wb") as handle:
            handle.write(config.model_dump_json().encode())

    def extract_metadata(self, data: TranscriptionCheckpoint) -> dict[str, MetadataType]:
        return {
            "recogniser": data.recogniser,
            "base_model": data.base_model,
            "speech_label": data.speech_label,
            "size_bytes": sum(len(content) for content in data.files.values()),
        }
