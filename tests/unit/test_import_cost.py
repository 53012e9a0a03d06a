"""What the pipelines import before any step runs: a turn with nothing new to do must not pay
for the model stacks (torch alone takes seconds to import on two cores)."""

import json
import os
import subprocess
import sys
from pathlib import Path

HEAVY = ["torch", "torchvision", "transformers", "sklearn"]


def test_steps_pipelines_and_materializers_import_no_model_stack(tmp_path: Path) -> None:
    # A script file, not `-c`: ZenML resolves step sources from the main module's file when
    # the checkout has no `.zen` yet (a fresh clone before its first run).
    probe = tmp_path / "probe.py"
    probe.write_text(
        "import json, sys; import steps, pipelines, materializers; "
        f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    )
    project_root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, str(probe)],
        capture_output=True,
        text=True,
        check=True,
        cwd=project_root,
        env={**os.environ, "PYTHONPATH": str(project_root)},
    ).stdout
    assert json.loads(out.splitlines()[-1]) == []
