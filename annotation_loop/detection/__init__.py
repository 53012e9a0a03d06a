"""Object detection: boxes on images, an FCOS detector on the shipped EfficientNet-Lite0
backbone, its metrics (COCO mAP), demo canvases of MNIST digits and COCO/YOLO export.

The modules that import torch (`model`, `detector`, `metrics`) are imported only when a
model is trained, run or scored; `boxes`, `train_config`, `checkpoint` and `export` import no
model library, so choosing the task type or checking a config costs nothing.
"""

# The task type registry first: `metrics` declares its scores as a `ValidationMetrics`, whose
# package registers the detection task type, which takes those scores. Imported the other
# way round (this package first), the task type would find `metrics` half-initialised.
import annotation_loop.task_types  # noqa: F401
