"""Audio files -> transcribed segments: decode, find speech (VAD), transcribe each region with
the checkpoint's recogniser. Files that cannot be decoded or hold no speech are skipped, one
warning line each, and the rest of the batch goes on."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from annotation_loop.audio.checkpoint import TranscriptionCheckpoint
from annotation_loop.audio.decoding import UnreadableAudioError, cut, decode_audio
from annotation_loop.audio.segments import Segment
from annotation_loop.audio.vad import speech_regions

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RegionTranscript:
    text: str
    confidence: float  # in [0, 1]
    embedding: np.ndarray | None  # the CTC model's features; pocketsphinx has none


@dataclass(frozen=True)
class TranscribedItem:
    key: str
    segments: tuple[Segment, ...]
    score: float  # the regions' confidences, weighted by their length
    embedding: np.ndarray | None  # float16, for diversity in active learning


def transcribe_clips(
    model: TranscriptionCheckpoint, clips: Sequence[np.ndarray], batch_size: int
) -> list[RegionTranscript]:
    """The recogniser's transcript of each 16 kHz clip, CTC clips `batch_size` at a time."""
    if model.recogniser == "pocketsphinx":
        from annotation_loop.audio.pocketsphinx_recogniser import transcribe

        return [
            RegionTranscript(t.text, t.confidence, None) for t in (transcribe(c) for c in clips)
        ]
    from annotation_loop.audio import ctc

    transcripts: list[RegionTranscript] = []
    for start in range(0, len(clips), batch_size):
        transcripts += [
            RegionTranscript(t.text, t.confidence, t.embedding)
            for t in ctc.transcribe_clips(model.ctc, clips[start : start + batch_size])
        ]
    return transcripts


def transcribe_regions(
    model: TranscriptionCheckpoint,
    samples: np.ndarray,
    regions: Sequence[tuple[float, float]],
    batch_size: int,
) -> list[tuple[Segment, np.ndarray | None]]:
    """Each (start, end) region of `samples` as a predicted segment, with its embedding."""
    clips = [cut(samples, start, end) for start, end in regions]
    transcripts = transcribe_clips(model, clips, batch_size)
    return [
        (Segment(start, end, t.text, model.speech_label, t.confidence), t.embedding)
        for (start, end), t in zip(regions, transcripts, strict=True)
    ]


def _weighted(values: Sequence[float], weights: Sequence[float]) -> float:
    return float(np.average(values, weights=weights))


def transcribe_items(
    model: TranscriptionCheckpoint, inputs: Iterable[tuple[str, bytes]], batch_size: int
) -> tuple[list[TranscribedItem], list[str]]:
    """(transcribed items, keys of the skipped ones) for `(key, audio file bytes)` pairs."""
    items: list[TranscribedItem] = []
    skipped: list[str] = []
    for key, data in inputs:
        try:
            samples = decode_audio(data, key)
        except UnreadableAudioError as error:
            logger.warning("Skipped an audio file: %s", error)
            skipped.append(key)
            continue
        regions = speech_regions(samples)
        if not regions:
            logger.warning("Skipped an audio file: %s: no speech found (silent?)", key)
            skipped.append(key)
            continue
        found = transcribe_regions(model, samples, regions, batch_size)
        lengths = [segment.end - segment.start for segment, _ in found]
        embeddings = [embedding for _, embedding in found if embedding is not None]
        items.append(
            TranscribedItem(
                key=key,
                segments=tuple(segment for segment, _ in found),
                score=_weighted([segment.score or 0.0 for segment, _ in found], lengths),
                embedding=(
                    np.average(embeddings, axis=0, weights=lengths).astype(np.float16)
                    if len(embeddings) == len(found)
                    else None
                ),
            )
        )
    return items, skipped
