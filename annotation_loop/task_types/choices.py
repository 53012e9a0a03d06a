"""Single-choice classification in Label Studio terms: a `Choices` control over one object
tag (an `Image`, a `Text`), shared by the image and text classification task types."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from annotation_loop.errors import ConfigurationError, UnknownLabelError

FROM_NAME = "label"


def check_labels(labels: Sequence[str]) -> None:
    if not labels:
        raise ConfigurationError('The label list is empty: set LOOP_LABELS, e.g. \'["cat","dog"]\'')
    if len(set(labels)) != len(labels):
        raise ConfigurationError(f"The label list has duplicates: {list(labels)}")


def choices_config(object_tag: str, to_name: str, labels: Sequence[str]) -> str:
    """A label config: `object_tag` (e.g. `<Image name="image" value="$image"/>`, named
    `to_name`) and one single-choice `Choices` over it."""
    check_labels(labels)
    choices = "\n    ".join(f"<Choice value={quoteattr(label)}/>" for label in labels)
    return (
        "<View>\n"
        f"  {object_tag}\n"
        f'  <Choices name="{FROM_NAME}" toName="{to_name}" choice="single" showInline="true">\n'
        f"    {choices}\n"
        "  </Choices>\n"
        "</View>"
    )


def result_for_label(label: str, to_name: str) -> list[dict[str, Any]]:
    return [
        {
            "from_name": FROM_NAME,
            "to_name": to_name,
            "type": "choices",
            "value": {"choices": [label]},
        }
    ]


def label_from_result(
    result: Sequence[dict[str, Any]], labels: Sequence[str], where: str = "an annotation"
) -> str | None:
    """The chosen label of an annotation/prediction result, or None if it chose nothing."""
    for region in result:
        if region.get("from_name") == FROM_NAME and region.get("type") == "choices":
            choices = region.get("value", {}).get("choices") or []
            if not choices:
                continue
            label = str(choices[0])
            if label not in labels:
                raise UnknownLabelError(
                    f"Label {label!r} of {where} is not in the label list {list(labels)}: fix "
                    "the annotation in Label Studio or add the label to LOOP_LABELS"
                )
            return label
    return None
