"""Image classification in Label Studio terms: label config, task data, results.

One `Choices` control named `label` over one `Image` named `image`; tasks carry the
object's URI and content hash next to the URI Label Studio displays.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from annotation_loop.errors import ConfigurationError, UnknownLabelError
from annotation_loop.storage import StoredObject

FROM_NAME = "label"
TO_NAME = "image"


def label_config(labels: Sequence[str]) -> str:
    """The Label Studio XML config for single-choice classification over `labels`."""
    if not labels:
        raise ConfigurationError('The label list is empty: set LOOP_LABELS, e.g. \'["cat","dog"]\'')
    if len(set(labels)) != len(labels):
        raise ConfigurationError(f"The label list has duplicates: {list(labels)}")
    choices = "\n    ".join(f"<Choice value={quoteattr(label)}/>" for label in labels)
    return (
        "<View>\n"
        f'  <Image name="{TO_NAME}" value="$image" zoom="true"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" showInline="true">\n'
        f"    {choices}\n"
        "  </Choices>\n"
        "</View>"
    )


def task_data(obj: StoredObject, display_uri: str) -> dict[str, Any]:
    """What a task stores: `image` is for Label Studio, the rest is for the loop."""
    return {
        "image": display_uri,
        "uri": obj.uri,
        "key": obj.key,
        "batch": obj.batch,
        "content_hash": obj.content_hash,
    }


def result_for_label(label: str) -> list[dict[str, Any]]:
    return [
        {
            "from_name": FROM_NAME,
            "to_name": TO_NAME,
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]


def label_from_result(result: Sequence[dict[str, Any]], labels: Sequence[str]) -> str | None:
    """The chosen label of an annotation/prediction result, or None if it chose nothing."""
    for region in result:
        if region.get("from_name") == FROM_NAME and region.get("type") == "choices":
            choices = region.get("value", {}).get("choices") or []
            if not choices:
                continue
            label = str(choices[0])
            if label not in labels:
                raise UnknownLabelError(
                    f"Label {label!r} is not in the label list {list(labels)}: fix the "
                    "annotation in Label Studio or add the label to LOOP_LABELS"
                )
            return label
    return None
