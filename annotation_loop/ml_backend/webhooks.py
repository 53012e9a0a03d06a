"""Label Studio's webhook events, read for what retraining needs: whether the served project's
annotations changed, or training was asked for.

Label Studio posts `{"action": ..., "project": {"id": ...}, <payload>}` for every action of the
project (the loop's webhook is created with `send_payload` and `send_for_all_actions`);
"Start Training" (`START_TRAINING`) comes the same way through the ML backend connection.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

START_TRAINING = "START_TRAINING"
ANNOTATION_ACTIONS = frozenset(
    {"ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATIONS_CREATED", "ANNOTATIONS_DELETED"}
)


@dataclass(frozen=True)
class WebhookEvent:
    action: str | None
    project_id: int | None  # the project it is about
    ignored: str | None = None  # why retraining ignores the event


def read_event(payload: Any) -> WebhookEvent:
    """What a webhook's JSON body means for retraining; never raises."""
    if not isinstance(payload, dict) or not isinstance(payload.get("action"), str):
        return WebhookEvent(None, None, ignored="no action in the body")
    action: str = payload["action"]
    project = payload.get("project")
    sender = project.get("id") if isinstance(project, dict) else None
    project_id = sender if isinstance(sender, int) and not isinstance(sender, bool) else None
    if action != START_TRAINING and action not in ANNOTATION_ACTIONS:
        return WebhookEvent(action, project_id, ignored="not an annotation event")
    return WebhookEvent(action, project_id)
