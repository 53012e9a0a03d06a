from pipelines.inference import inference_pipeline
from pipelines.training import training_pipeline

__all__ = ["inference_pipeline", "training_pipeline"]
