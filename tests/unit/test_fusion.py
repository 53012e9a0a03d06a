"""Inference-only graph rewrites: same outputs as the model they come from, fewer ops."""

from typing import Any

import pytest
import torch
from torch import fx, nn

from annotation_loop.vision.backbones import KNOWN_ARCHS, build_classifier
from annotation_loop.vision.fusion import fuse_for_inference


def _trained_statistics(arch: str) -> nn.Module:
    """`arch` in eval mode with batch-norm statistics that are not the identity."""
    torch.manual_seed(0)
    model = build_classifier(arch, 10, 64, pretrained=False).train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(8, 3, 64, 64) * 3 + 1)
    return model.eval()


def _called(graph_module: nn.Module, kind: type[nn.Module]) -> list[Any]:
    assert isinstance(graph_module, fx.GraphModule)
    modules = dict(graph_module.named_modules())
    return [
        modules[node.target]
        for node in graph_module.graph.nodes
        if node.op == "call_module" and isinstance(modules[node.target], kind)
    ]


@pytest.mark.parametrize("arch", KNOWN_ARCHS)
def test_fused_model_predicts_what_the_model_does_with_no_batch_norm(arch: str) -> None:
    model = _trained_statistics(arch)
    images = torch.randn(4, 3, 64, 64)
    with torch.inference_mode():
        expected = model(images)
        fused = fuse_for_inference(model)
        actual = fused(images)
        unchanged = model(images)
    assert _called(fused, nn.BatchNorm2d) == []
    assert torch.allclose(actual, expected, rtol=1e-3, atol=1e-4)
    assert torch.equal(unchanged, expected)  # the model it came from still has its BNs


def test_symmetric_same_padding_becomes_the_convolutions_own() -> None:
    model = _trained_statistics("efficientnet_lite0")
    before = _called(fx.symbolic_trace(model), nn.ZeroPad2d)
    after = _called(fuse_for_inference(model), nn.ZeroPad2d)
    assert any(p.padding[0] == p.padding[1] for p in before)
    assert after and all(p.padding[0] != p.padding[1] for p in after)
    assert len(after) < len(before)


def test_a_model_fx_cannot_trace_is_returned_as_it_is() -> None:
    class DataDependent(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x if x.sum() > 0 else -x

    model = DataDependent()
    assert fuse_for_inference(model) is model
