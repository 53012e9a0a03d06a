import xml.etree.ElementTree as ET

import pytest

from annotation_loop.errors import ConfigurationError, UnknownLabelError
from annotation_loop.image_classification import label_config, label_from_result, result_for_label


def test_label_config_lists_every_label_once_and_escapes():
    config = label_config(["cat", 'big "dog"', "a&b"])
    root = ET.fromstring(config)
    choices = [c.attrib["value"] for c in root.iter("Choice")]
    assert choices == ["cat", 'big "dog"', "a&b"]
    assert root.find("Image").attrib["value"] == "$image"
    assert root.find("Choices").attrib["toName"] == "image"


@pytest.mark.parametrize("labels", [[], ["a", "a"]])
def test_bad_label_lists_are_rejected(labels):
    with pytest.raises(ConfigurationError):
        label_config(labels)


def test_result_round_trip_and_unknown_label():
    assert label_from_result(result_for_label("7"), ["7", "8"]) == "7"
    assert label_from_result([], ["7"]) is None
    with pytest.raises(UnknownLabelError, match="LOOP_LABELS"):
        label_from_result(result_for_label("9"), ["7", "8"])
