"""How long a turn of the loop takes when there is nothing new: `python run.py CLOUD
--inference` on a batch that is synced and pre-annotated by the production model already.

    make bench                                  # also runs this, on the local stand-ins
    python -m benchmarks.pipeline_overhead --repeats 5

That is ZenML's own cost per pipeline run (stack, run records, artifacts) plus the steps
finding nothing to do: the sync lists the batch and adds nothing, the prediction step finds
every task predicted and does not load the model, nothing is pushed. Needs a production
model: without one, `run.py demo` runs first (a few minutes). One warm-up run predicts
whatever the production model has not predicted yet; the timed runs follow it. Whole
command wall times, as a user sees them; written to benchmarks/results/pipeline_overhead.json.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path

import click

from annotation_loop.settings import CLOUDS, Settings
from annotation_loop.zenml_integration.model_registry import production_version
from benchmarks.figures import Row, report, timed

ROOT = Path(__file__).parent.parent
RESULTS = Path(__file__).parent / "results" / "pipeline_overhead.json"


def run_py(*args: str) -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args], cwd=ROOT, capture_output=True, text=True
    )
    if done.returncode:
        last = (done.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise click.ClickException(f"`run.py {' '.join(args)}` failed: {last}")


@click.command()
@click.option("--cloud", type=click.Choice(CLOUDS), default="local", show_default=True)
@click.option("--repeats", default=3, show_default=True)
def main(cloud: str, repeats: int) -> None:
    if production_version(Settings().model_name) is None:
        click.echo(f"No production model yet: running `run.py demo --cloud {cloud}` first ...")
        run_py("demo", "--cloud", cloud)
    click.echo("Warm-up run (predicts what the production model has not predicted yet) ...")
    run_py(cloud, "--inference")
    runs = [timed(run_py, cloud, "--inference") for _ in range(repeats)]
    report(
        [Row(f"run.py {cloud} --inference, nothing new", statistics.median(runs), "s")],
        RESULTS,
        {"repeats": repeats, "runs": ", ".join(f"{run:.1f} s" for run in runs)},
    )


if __name__ == "__main__":
    main()
