"""Whether a Label Studio project's label config fits the served model: compared with the
config the task type itself writes, so no task type is special-cased here."""

from __future__ import annotations

from collections.abc import Sequence
from xml.etree import ElementTree

from annotation_loop.task_types.base import TaskType


def check_label_config(
    label_config_xml: str, task_type: TaskType, labels: Sequence[str]
) -> str | None:
    """None if the model's predictions fit the config, else a one-line reason why not.

    They fit when the control tag the predictions name (`task_type.from_name`) is of the
    expected kind (`Choices`, `Labels`), over the same object tag (same kind, same data field),
    and offers every label the model can predict.
    """
    expected = ElementTree.fromstring(task_type.label_config(labels))
    try:
        actual = ElementTree.fromstring(label_config_xml)
    except ElementTree.ParseError as error:
        return f"the label config is not valid XML ({error})"
    # The control tag must label the same object tag, and that one show the same data field.
    for name, attribute in (
        (task_type.from_name, "toName"),
        (_to_name(expected, task_type), "value"),
    ):
        wanted, found = (_describe(_named(root, name), attribute) for root in (expected, actual))
        if found != wanted:
            return f"its tag {name!r} is {found}, but the model needs {wanted}"
    control = _named(actual, task_type.from_name)
    assert control is not None  # it matched the expected control tag above
    offered = {option.get("value") for option in control}
    missing = [label for label in labels if label not in offered]
    if missing:
        return f"its tag {task_type.from_name!r} lacks labels the model predicts: {missing}"
    return None


def _named(root: ElementTree.Element, name: str) -> ElementTree.Element | None:
    return next((element for element in root.iter() if element.get("name") == name), None)


def _to_name(config: ElementTree.Element, task_type: TaskType) -> str:
    """The object tag (`Text`, `Image`) the task type's control tag labels."""
    control = _named(config, task_type.from_name)
    return control.get("toName", "") if control is not None else ""


def _describe(tag: ElementTree.Element | None, attribute: str) -> str:
    if tag is None:
        return "missing"
    return f'<{tag.tag} name="{tag.get("name")}" {attribute}="{tag.get(attribute)}">'
