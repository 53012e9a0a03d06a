"""Helpers the integration tests share (fixtures live in conftest.py)."""

import io

import httpx
from PIL import Image

from annotation_loop.labelstudio.queues import REVIEW_SUFFIX
from annotation_loop.settings import Settings

# A small image-classification project, as the Label Studio client tests use it.
CONFIG = (
    '<View><Image name="image" value="$image"/>'
    '<Choices name="label" toName="image"><Choice value="cat"/><Choice value="dog"/></Choices>'
    "</View>"
)


def png(color: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (4, 4), color).save(buffer, format="PNG")
    return buffer.getvalue()


def project_tasks(settings: Settings, project_id: int) -> list[dict]:
    """Every task with its predictions and annotations, straight from the REST API."""
    response = httpx.get(
        f"{settings.label_studio_url}/api/tasks",
        params={"project": project_id, "page_size": 10_000, "fields": "all"},
        headers={"Authorization": f"Token {settings.label_studio_api_key.get_secret_value()}"},
        timeout=60,
    )
    response.raise_for_status()
    body = response.json()
    return body["tasks"] if isinstance(body, dict) else body


def pre_annotations(task: dict) -> list[dict]:
    """A task's pre-annotations: its predictions other than label-review suggestions."""
    return [p for p in task["predictions"] if not p["model_version"].endswith(REVIEW_SUFFIX)]
