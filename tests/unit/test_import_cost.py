"""What the pipelines import before any step runs: a turn with nothing new to do must not pay
for the model stacks (torch alone takes seconds to import on two cores)."""

import json
import subprocess
import sys

from zenml.utils import source_utils

from annotation_loop.text.checkpoint import TextCheckpoint
from annotation_loop.vision.checkpoint import ClassifierCheckpoint

HEAVY = ["torch", "torchvision", "transformers", "sklearn"]


def test_steps_pipelines_and_materializers_import_no_model_stack() -> None:
    probe = (
        "import json, sys; import steps, pipelines, materializers; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(out.splitlines()[-1]) == []


def test_checkpoints_stored_before_the_move_still_load() -> None:
    # ZenML stores each artifact's data type by import path; models registered before the
    # checkpoints had modules of their own name the model modules.
    assert source_utils.load("annotation_loop.vision.classifier.ClassifierCheckpoint") is (
        ClassifierCheckpoint
    )
    assert source_utils.load("annotation_loop.text.pretrained.TextCheckpoint") is TextCheckpoint
