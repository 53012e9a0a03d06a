"""Pretrained torchvision weights come from torch.hub's cache folder, which torch reads
without checking a file it finds there: a file that would run code is refused, not run."""

from pathlib import Path

import pytest
import torch
from tampering import code_payload, runs_code
from torchvision.models import get_model_weights

from annotation_loop.vision.backbones import WeightsUnavailableError, build_classifier


def test_cached_hub_weights_that_would_run_code_are_refused(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = Path(torch.hub.get_dir()) / "checkpoints"
    cached.mkdir(parents=True)
    marker = tmp_path / "code-ran"
    payload = code_payload(marker)
    (cached / Path(get_model_weights("resnet18").DEFAULT.url).name).write_bytes(payload)

    with pytest.raises(WeightsUnavailableError, match="hold more than tensors: delete them"):
        build_classifier("resnet18", num_classes=2, image_size=32, pretrained=True)
    assert not marker.exists()
    assert runs_code(payload, marker)  # the payload is live: an unsafe load would run it
