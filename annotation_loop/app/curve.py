"""`run.py curve`: the model's learning curve and whether labelling more still pays off."""

from __future__ import annotations

from annotation_loop.errors import LoopError
from annotation_loop.settings import Settings


def learning_curve_report(settings: Settings) -> str:
    """The curve as a table (labels vs validation score per version), and the advice the
    last training run recorded."""
    from zenml.client import Client

    from annotation_loop.learning.learning_curve import curve_table
    from annotation_loop.task_types import get_task_type
    from annotation_loop.zenml_integration.model_registry import learning_curve

    metric = get_task_type(settings.task).promotion_metric
    points = learning_curve(settings.model_name, metric)
    if not points:
        raise LoopError(
            f"No training runs of {settings.model_name!r} yet: run `python run.py <cloud> --train`"
        )
    latest = Client().get_model_version(settings.model_name, points[-1].version)
    recorded = latest.run_metadata.get("learning_curve")
    advice = recorded["advice"] if isinstance(recorded, dict) else None
    return curve_table(points, metric) + (f"\n{advice}" if advice else "")
