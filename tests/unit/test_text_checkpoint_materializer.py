"""The text checkpoint materializer against a real (local) ZenML artifact store."""

from zenml.materializers.materializer_registry import materializer_registry

from annotation_loop.text.checkpoint import TextCheckpoint
from annotation_loop.text.classifier import predict_texts, train_text_classifier
from annotation_loop.text.examples import TextExample
from annotation_loop.text.pretrained import TextTrainConfig
from materializers import TextCheckpointMaterializer


def test_checkpoint_round_trips_and_predicts_the_same(artifact_store):
    assert materializer_registry[TextCheckpoint] is TextCheckpointMaterializer
    examples = [
        TextExample("a", "great fun", "fresh"),
        TextExample("b", "dull mess", "rotten"),
    ]
    config = TextTrainConfig(max_length=16, stride=4, epochs=1, batch_size=2)
    checkpoint, _ = train_text_classifier(examples, ["fresh", "rotten"], config, progress=False)
    uri = f"{artifact_store.path}/model/1"
    artifact_store.makedirs(uri)
    materializer = TextCheckpointMaterializer(uri, artifact_store=artifact_store)
    materializer.save(checkpoint)
    loaded = TextCheckpointMaterializer(uri, artifact_store=artifact_store).load(TextCheckpoint)
    assert loaded == checkpoint
    texts = [("x", "what great fun"), ("y", "a dull mess")]
    assert predict_texts(loaded, texts, progress=False) == predict_texts(
        checkpoint, texts, progress=False
    )
    metadata = materializer.extract_metadata(checkpoint)
    assert metadata["base_model"] == "minilm" and metadata["labels"] == ["fresh", "rotten"]
