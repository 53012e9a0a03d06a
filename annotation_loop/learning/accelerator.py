"""Where tensors run: the GPU when there is one (bf16 autocast), else the CPU."""

from __future__ import annotations

from contextlib import AbstractContextManager

import torch


def best_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def autocast(device: torch.device) -> AbstractContextManager[None]:
    """bf16 mixed precision on a GPU; a no-op on the CPU, where bf16 is slower."""
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")
