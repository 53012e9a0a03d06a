"""Training a recogniser from annotated audio files: the pocketsphinx baseline (nothing to
fit) or a CTC model fine-tuned on the annotated speech segments, cut out by their times."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from annotation_loop.audio.checkpoint import TranscriptionCheckpoint
from annotation_loop.audio.decoding import UnreadableAudioError, cut, decode_audio
from annotation_loop.audio.segments import Segment
from annotation_loop.audio.train_config import POCKETSPHINX, TranscriptionTrainConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class AnnotatedAudio:
    key: str
    data: bytes  # the audio file
    segments: tuple[Segment, ...]


def speech_clips(
    files: Sequence[AnnotatedAudio], speech_label: str, max_segment_s: float
) -> list[Any]:
    """The transcribed `speech_label` segments of the files as training clips; files that
    cannot be decoded are skipped with a warning, segments over `max_segment_s` left out."""
    from annotation_loop.audio.ctc_training import Clip

    clips = []
    for item in files:
        try:
            samples = decode_audio(item.data, item.key)
        except UnreadableAudioError as error:
            logger.warning("Skipped an audio file: %s", error)
            continue
        clips += [
            Clip(cut(samples, s.start, s.end), s.text)
            for s in item.segments
            if s.label == speech_label and s.text.strip() and s.end - s.start <= max_segment_s
        ]
    return clips


def train_recogniser(
    files: Sequence[AnnotatedAudio],
    speech_label: str,
    config: TranscriptionTrainConfig,
    init: TranscriptionCheckpoint | None,
) -> tuple[TranscriptionCheckpoint, dict[str, Any]]:
    """(checkpoint, JSON-able report with `device`, `examples`, `items_per_second`)."""
    if config.base_model == POCKETSPHINX:
        # Registered as a version all the same: evaluated, promoted, and predicting with it
        # from the next inference on, before any model has been fine-tuned.
        report = {
            "device": "cpu",
            "examples": len(files),
            "items_per_second": 0.0,
            "recogniser": POCKETSPHINX,
            "note": "pocketsphinx ships trained (en-US): nothing was fitted",
        }
        return TranscriptionCheckpoint("pocketsphinx", POCKETSPHINX, speech_label), report
    from annotation_loop.audio.ctc_training import fine_tune_ctc

    clips = speech_clips(files, speech_label, config.max_segment_s)
    checkpoint, ctc_report = fine_tune_ctc(clips, config, init, speech_label)
    report = asdict(ctc_report) | {
        "recogniser": "ctc",
        "examples": len(files),
        "items_per_second": len(files) * config.epochs / ctc_report.seconds,
    }
    return checkpoint, report
