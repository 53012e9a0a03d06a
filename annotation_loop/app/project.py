"""The project a command works on, as the pipelines take it."""

from __future__ import annotations

from annotation_loop.configs import ProjectSpec
from annotation_loop.settings import Settings


def project_spec(cloud: str, settings: Settings) -> ProjectSpec:
    return ProjectSpec(
        task=settings.task,
        project_name=settings.project_name,
        labels=settings.labels,
        source=settings.data_source(cloud),
        quality=settings.label_quality,
    )
