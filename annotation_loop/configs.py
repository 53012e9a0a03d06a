"""The pipelines' parameters as typed values, and `configs/<task>/*.yaml` read into them.

A YAML file is validated whole before the first step talks to anything: a misspelt key or a
value of the wrong type stops the command with one line that names the file and the key.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, TypeAdapter, ValidationError

from annotation_loop.data.storage import DataSource
from annotation_loop.errors import ConfigurationError
from annotation_loop.learning.active_learning import RankingConfig
from annotation_loop.learning.label_review import ReviewConfig
from annotation_loop.quality.consensus import ConsensusMethod
from annotation_loop.quality.sampling import LabelQuality
from annotation_loop.task_types import TaskName, get_task_type

if TYPE_CHECKING:
    from zenml import Model

CONFIGS_DIR = Path(__file__).resolve().parent.parent / "configs"

Parameters = TypeVar("Parameters", bound="StrictModel")


# A task type's `train_config:` (its own keys, checked against its `train_config_type`).
TrainConfigValues = dict[str, str | int | float | bool]


class StrictModel(BaseModel):
    """Unknown keys are errors, not silently ignored settings."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ProjectSpec(StrictModel):
    """What the loop works on: a Label Studio project of one task type, fed from a bucket."""

    task: TaskName
    project_name: str
    labels: list[str] = Field(min_length=1)
    source: DataSource
    quality: LabelQuality = LabelQuality()


class ModelSpec(StrictModel):
    """The Model Control Plane entry a training run registers a version of."""

    name: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)

    def zenml_model(self) -> Model:
        from zenml import Model

        return Model(name=self.name, description=self.description, tags=self.tags)


class TrainingParameters(StrictModel):
    """`configs/<task>/training.yaml`: the model's entry, how it is trained and reviewed."""

    model: ModelSpec
    validation_fraction: float = Field(default=0.2, gt=0.0, lt=1.0)
    train_config: TrainConfigValues = Field(default_factory=dict)
    label_review: ReviewConfig = ReviewConfig()
    consensus: ConsensusMethod = "majority"


class InferenceParameters(StrictModel):
    """`configs/<task>/inference.yaml`: how a batch is predicted and ordered for labelling."""

    batch_size: PositiveInt = 128
    active_learning: RankingConfig = RankingConfig()


def config_path(task: str, pipeline: str) -> Path:
    return CONFIGS_DIR / task / f"{pipeline}.yaml"


def load_parameters(path: Path, kind: type[Parameters]) -> Parameters:
    """The `parameters:` of a pipeline's YAML file as `kind`, or one line saying what is wrong."""
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"Cannot read {path}: {str(exc).splitlines()[0]}") from None
    unknown = set(document) - {"parameters"}
    if unknown:
        raise ConfigurationError(
            f"{path}: unknown top-level key {sorted(unknown)[0]!r}: only `parameters:` is read"
        )
    return _validated(path, "parameters", kind, document.get("parameters") or {})


def load_training_parameters(task: str, path: Path | None = None) -> TrainingParameters:
    """configs/<task>/training.yaml (or `path`), its `train_config` checked against the task
    type's."""
    path = path or config_path(task, "training")
    parameters = load_parameters(path, TrainingParameters)
    config_type = get_task_type(task).train_config_type
    _validated(path, "parameters.train_config", config_type, parameters.train_config)
    return parameters


def _validated(path: Path, where: str, kind: type[Any], value: object) -> Any:
    try:
        return TypeAdapter(kind).validate_python(value)
    except ValidationError as exc:
        error = exc.errors()[0]
        key = ".".join([where, *(str(part) for part in error["loc"])])
        raise ConfigurationError(f"{path}: {key}: {error['msg']}") from None
