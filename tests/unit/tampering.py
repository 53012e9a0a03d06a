"""Artifact content as someone with write access to the artifact store could leave it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch


class RunsCodeWhenUnpickled:
    """Unpickling this writes `marker`: it stands for any code a pickle can carry."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (exec, (f"open({str(self.marker)!r}, 'w').write('ran')",))


def code_payload(marker: Path) -> bytes:
    """A file in torch.save's format whose unpickling runs code (it writes `marker`)."""
    buffer = io.BytesIO()
    torch.save({"weight": RunsCodeWhenUnpickled(marker)}, buffer)
    return buffer.getvalue()


def runs_code(payload: bytes, marker: Path) -> bool:
    """Whether a plain, unsafe load of `payload` runs its code: proves a test's payload live."""
    torch.load(io.BytesIO(payload), weights_only=False)
    ran = marker.exists()
    marker.unlink(missing_ok=True)
    return ran
