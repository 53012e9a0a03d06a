"""A model's weights in an artifact folder, as `torch.save` writes a state dict, read back
without running anything from the file. torch is imported when weights are read or written,
not with the module: every step imports the materializers, and most never touch a model."""

from __future__ import annotations

import io
import os
from typing import Any

from zenml.artifact_stores import BaseArtifactStore

from materializers.artifact_files import refuse


def read_state_dict(store: BaseArtifactStore, uri: str, name: str) -> dict[str, Any]:
    """The tensors by name in the file `name` of the folder `uri`; an `ArtifactError` for a
    file that is anything else."""
    import torch

    # Remote stores hand out streams that torch.load cannot seek in: read the bytes first.
    with store.open(os.path.join(uri, name), "rb") as handle:
        weights = io.BytesIO(handle.read())
    try:
        # weights_only: tensors and plain containers only; a pickled object that would
        # run code on load is refused, not executed.
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # whatever the unpickler raises on bytes torch.save never wrote
        raise refuse(
            uri, f"{name} is not tensors as torch.save writes them ({type(exc).__name__})"
        ) from None
    if not isinstance(state, dict) or not all(
        isinstance(key, str) and isinstance(value, torch.Tensor) for key, value in state.items()
    ):
        raise refuse(uri, f"{name} is not a mapping of names to tensors")
    return state


def write_state_dict(store: BaseArtifactStore, uri: str, name: str, state: dict[str, Any]) -> None:
    import torch

    weights = io.BytesIO()
    torch.save(state, weights)
    with store.open(os.path.join(uri, name), "wb") as handle:
        handle.write(weights.getvalue())
