"""The loop's commands as functions: what `run.py`, the ML backend's retraining, the demo and
the tests call. Each prepares the stack, holds its lease and runs a pipeline; the rules of
the loop live in the pipelines' steps, not here."""

from annotation_loop.app.environment import load_settings
from annotation_loop.app.inference import InferenceOutcome, infer
from annotation_loop.app.training import TrainingOutcome, train

__all__ = ["InferenceOutcome", "TrainingOutcome", "infer", "load_settings", "train"]
