"""Speech transcription on Label Studio's long-audio template: labelled regions of an audio
file, each with its transcript. Pre-annotations come from voice-activity detection and a
recogniser: pocketsphinx (shipped trained, offline) or a fine-tuned CTC model."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from xml.sax.saxutils import quoteattr

from annotation_loop.audio.decoding import AUDIO_SUFFIXES
from annotation_loop.audio.segments import Segment, result_from_segments, segments_from_result
from annotation_loop.audio.text_norm import normalise
from annotation_loop.audio.train_config import TranscriptionTrainConfig
from annotation_loop.data.storage import ObjectStore
from annotation_loop.task_types.base import (
    Evaluation,
    Example,
    Prediction,
    TaskDefaults,
    TaskType,
)
from annotation_loop.task_types.bucket_files import BucketFiles
from annotation_loop.task_types.capabilities import DemoData, InteractivePrediction
from annotation_loop.task_types.choices import check_labels
from annotation_loop.task_types.metrics import ValidationMetrics

TO_NAME = "audio"
TRANSCRIPT_NAME = "transcription"

logger = logging.getLogger(__name__)

Segments = tuple[Segment, ...]


def _annotated(example: Example) -> Any:
    from annotation_loop.audio.training import AnnotatedAudio

    return AnnotatedAudio(example.key, example.input, tuple(example.target))


def _overlap(a: Segment, b: Segment) -> bool:
    return a.start < b.end and b.start < a.end


class TranscriptionScores(ValidationMetrics):
    """Corpus-level error rates over the validation files, each file's transcript being its
    segments' texts in time order (so a different cut into regions costs nothing).

    `word_accuracy` (max(0, 1 - WER)) is the score versions are promoted by: scores are
    higher-is-better, error rates are not.
    """

    lower_is_better = frozenset({"wer", "cer"})

    word_accuracy: float
    wer: float  # (substitutions + deletions + insertions) / reference words: lower is better
    cer: float  # the same over characters: lower is better
    n_words: int  # reference words
    substitutions: int
    deletions: int
    insertions: int
    per_file_wer: list[float]  # in the order of the scored files


class AudioFiles(BucketFiles):
    """Audio files in the bucket, one task each (decoded, and checked, by the model)."""

    media_field = TO_NAME
    suffixes = AUDIO_SUFFIXES


class SpeechTranscription(AudioFiles, TaskType, DemoData, InteractivePrediction):
    name = "transcription"
    description = "speech transcription"
    item_description = "WAV/FLAC/MP3/OGG audio files"
    metrics_type = TranscriptionScores
    promotion_metric = "word_accuracy"  # max(0, 1 - WER): scores are higher-is-better
    train_config_type = TranscriptionTrainConfig
    agreement_kind = "transcripts"
    items_in_bucket = True
    defaults = TaskDefaults(
        project_name="Spoken reviews",
        model_name="speech_recogniser",
        dataset="speech",
        labels=("Speech",),
        demo_batch_size=24,  # a few seconds of speech each, recognised at ~4x real time
    )

    def label_config(self, labels: Sequence[str]) -> str:
        """The long-audio template; the first label marks the speech the model transcribes."""
        check_labels(labels)
        options = "\n    ".join(f"<Label value={quoteattr(label)}/>" for label in labels)
        return (
            "<View>\n"
            f'  <Labels name="{self.from_name}" toName="{TO_NAME}">\n'
            f"    {options}\n"
            "  </Labels>\n"
            f'  <Audio name="{TO_NAME}" value="$audio"/>\n'
            f'  <TextArea name="{TRANSCRIPT_NAME}" toName="{TO_NAME}" rows="2" '
            'editable="true" perRegion="true"/>\n'
            "</View>"
        )

    def target_from_result(
        self, result: Sequence[dict[str, Any]], input_ref: str, labels: Sequence[str], where: str
    ) -> Segments:
        # No regions is a label too: "nobody speaks in this file".
        segments = segments_from_result(result, labels, self.from_name, TRANSCRIPT_NAME, where)
        return tuple(Segment(s.start, s.end, s.text, s.label) for s in segments)

    def result_for_target(self, target: Any, input_ref: str) -> list[dict[str, Any]]:
        return result_from_segments(target, self.from_name, TRANSCRIPT_NAME, TO_NAME)

    def encode_target(self, target: Any) -> Any:
        return [[s.start, s.end, s.text, s.label] for s in target]

    def decode_target(self, encoded: Any) -> Segments:
        return tuple(
            Segment(float(start), float(end), str(text), str(label))
            for start, end, text, label in encoded
        )

    def labels_of(self, target: Any) -> list[str]:
        return [segment.label for segment in target]

    def train(
        self,
        examples: Sequence[Example],
        labels: Sequence[str],
        config: Mapping[str, Any],
        init: Any | None,
    ) -> tuple[Any, dict[str, Any]]:
        from annotation_loop.audio.training import train_recogniser

        check_labels(labels)
        return train_recogniser(
            [_annotated(e) for e in examples], labels[0], self.train_config_type(**config), init
        )

    def predict(
        self, model: Any, inputs: Iterable[tuple[str, Any]], batch_size: int
    ) -> tuple[list[Prediction], list[str]]:
        """Segments from voice-activity detection, transcribed; files that cannot be decoded
        or hold no speech are skipped (one warning each) and returned as unusable."""
        from annotation_loop.audio.transcriber import transcribe_items

        items, skipped = transcribe_items(model, inputs, batch_size)
        return [
            Prediction(item.key, item.segments, item.score, 1.0 - item.score, item.embedding)
            for item in items
        ], skipped

    def evaluate(self, model: Any, examples: Sequence[Example]) -> Evaluation:
        from annotation_loop.audio.evaluation import evaluate_recogniser
        from annotation_loop.audio.metrics import plot_error_rates

        scores = evaluate_recogniser(model, [_annotated(e) for e in examples])
        return Evaluation(scores, plot_error_rates(scores))

    def predict_region(
        self, model: Any, input: Any, region: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The transcript of a segment an annotator marks: a `textarea` result with the
        region's id, times and the recogniser's confidence as its score."""
        from annotation_loop.audio.decoding import UnreadableAudioError, decode_audio
        from annotation_loop.audio.transcriber import transcribe_regions

        value = region.get("value", {})
        start, end = value.get("start"), value.get("end")
        if region.get("to_name") != TO_NAME or not isinstance(start, int | float):
            return None
        if not isinstance(end, int | float) or not 0 <= start < end or input is None:
            return None
        try:
            samples = decode_audio(input, f"region {region.get('id')!r}")
        except UnreadableAudioError as error:
            logger.warning("No transcript for a region: %s", error)
            return None
        [(segment, _)] = transcribe_regions(model, samples, [(float(start), float(end))], 1)
        return {
            "id": region.get("id"),
            "from_name": TRANSCRIPT_NAME,
            "to_name": TO_NAME,
            "type": "textarea",
            "value": {"start": start, "end": end, "channel": 0, "text": [segment.text]},
            "score": segment.score,
        }

    def seed_demo(
        self, store: ObjectStore, batches: int, batch_size: int, seed: int
    ) -> dict[str, Any]:
        from annotation_loop.audio.demo_data import seed_speech_batches

        return seed_speech_batches(store, batches, batch_size, seed, self.defaults.labels[0])

    def same_target(self, a: Any, b: Any) -> bool:
        """The same words (normalised) in segments that pair up in time."""

        def words(segments: Segments) -> str:
            return normalise(" ".join(s.text for s in segments))

        return (
            words(a) == words(b)
            and len(a) == len(b)
            and all(_overlap(x, y) for x, y in zip(a, b, strict=True))
        )
