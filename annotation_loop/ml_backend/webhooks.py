"""Label Studio's webhook events, read for what retraining needs: how many annotations an
event created or changed, or that training was asked for.

Label Studio posts `{"action": ..., <payload>}` for every action of the project (the ML
backend's webhook is created with `send_for_all_actions`): `ANNOTATION_CREATED` and
`ANNOTATION_UPDATED` carry one `annotation` object, `ANNOTATIONS_CREATED` a list of them
under the same key, and `START_TRAINING` (the "Start Training" button) only the project.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

START_TRAINING = "START_TRAINING"
ONE_ANNOTATION = frozenset({"ANNOTATION_CREATED", "ANNOTATION_UPDATED"})
MANY_ANNOTATIONS = frozenset({"ANNOTATIONS_CREATED"})


@dataclass(frozen=True)
class WebhookEvent:
    action: str | None
    annotations: int = 0  # created or changed; skipped tasks' annotations label nothing
    ignored: str | None = None  # why retraining ignores the event


def read_event(payload: Any) -> WebhookEvent:
    """What a webhook's JSON body means for retraining; never raises."""
    if not isinstance(payload, dict) or not isinstance(payload.get("action"), str):
        return WebhookEvent(None, ignored="no action in the body")
    action: str = payload["action"]
    if action == START_TRAINING:
        return WebhookEvent(action)
    if action not in ONE_ANNOTATION | MANY_ANNOTATIONS:
        return WebhookEvent(action, ignored="not an annotation event")
    annotation = payload.get("annotation")
    annotations = [annotation] if action in ONE_ANNOTATION else annotation
    if (
        not isinstance(annotations, list)
        or not annotations
        or not all(isinstance(a, dict) for a in annotations)
    ):
        return WebhookEvent(action, ignored="no annotation in the body")
    labelled = sum(1 for a in annotations if not a.get("was_cancelled"))
    if not labelled:
        return WebhookEvent(action, ignored="only skipped tasks")
    return WebhookEvent(action, annotations=labelled)
