"""A saved Hugging Face model (weights, configs, tokenizer or processor files) as the files
of an artifact folder's `files/` sub-folder: only the names of an allow-list are written or
read back, so nothing a loader would execute (a pickled `.bin`, a `.py`) is ever stored."""

from __future__ import annotations

import os

from zenml.artifact_stores import BaseArtifactStore

from annotation_loop.errors import ArtifactError
from materializers.artifact_files import ArtifactFiles

FILES_DIR = "files"


def write_model_files(
    store: BaseArtifactStore, uri: str, allowed: ArtifactFiles, content: dict[str, bytes]
) -> None:
    """Writes `content` (file name -> bytes); refuses, before writing any, a name `allowed`
    does not hold: a run must not produce a model that the next run would refuse."""
    for name in content:
        if not allowed.allows(name):
            raise ArtifactError(
                f"The fine-tuned model wrote {name!r}, which {allowed.kind} does not hold "
                "(only safetensors weights and JSON configs, tokenizer and vocabulary files): "
                "pick a base model that saves as safetensors"
            )
    folder = os.path.join(uri, FILES_DIR)
    if content:  # an object store has no empty folders: none is made for no files
        store.makedirs(folder)
    for name, data in content.items():
        with store.open(os.path.join(folder, name), "wb") as handle:
            handle.write(data)


def read_model_files(
    store: BaseArtifactStore, uri: str, allowed: ArtifactFiles, names: list[str]
) -> dict[str, bytes]:
    """The files `names` (read from the artifact's own config), if the folder holds only
    files `allowed` holds and each name is one of them."""
    folder = os.path.join(uri, FILES_DIR)
    if names:
        allowed.check_folder(store, folder)
    content = {}
    for name in names:
        allowed.check_name(name, uri)
        with store.open(os.path.join(folder, name), "rb") as handle:
            content[name] = handle.read()
    return content
