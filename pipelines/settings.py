"""Settings that matter once the pipelines run on a remote orchestrator.

The local orchestrator ignores them; Kubernetes, Vertex AI, SageMaker and AzureML build an
image from pyproject.toml and schedule `train_model` on a GPU node.
"""

from zenml.config import DockerSettings, ResourceSettings

from annotation_loop.settings import PROJECT_ROOT

DOCKER = DockerSettings(pyproject_path=str(PROJECT_ROOT / "pyproject.toml"))
TRAINING_RESOURCES = ResourceSettings(cpu_count=4, memory="16GB", gpu_count=1)

# A dynamic pipeline stores every plain value it hands a step as an artifact of its own (an
# upload to the bucket per input) unless it fits this many bytes of JSON: then it is a step
# parameter, shown in the step's configuration. The loop's are small (a project, a name).
ENVIRONMENT = {"ZENML_PARAMETER_SIZE_THRESHOLD": "65536"}
