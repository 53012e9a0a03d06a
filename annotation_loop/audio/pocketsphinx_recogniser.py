"""The baseline recogniser: pocketsphinx with the en-US model its wheel ships, so speech is
transcribed offline with nothing to download or train."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np

from annotation_loop.audio.decoding import SAMPLE_RATE

# Words pocketsphinx marks that are not speech: silences, fillers, sentence bounds.
_NOT_WORDS = frozenset({"<s>", "</s>", "<sil>"})

# A decoder holds one utterance at a time: calls in one process take turns.
_lock = threading.Lock()


@dataclass(frozen=True)
class Transcript:
    text: str
    confidence: float  # in [0, 1]


@cache
def _decoder() -> Any:
    """The decoder, loaded once per process (a third of a second, and 40 MB)."""
    from pocketsphinx import Decoder

    return Decoder(samprate=SAMPLE_RATE, loglevel="ERROR")


def _word(name: str) -> str:
    # The dictionary's alternative pronunciations are "the(2)": the word is "the".
    return name.split("(", 1)[0]


def transcribe(samples: np.ndarray) -> Transcript:
    """The words of one stretch of speech (16 kHz float32) and the recogniser's confidence:
    the mean posterior probability of its words (1 for no words: nothing heard, no doubt)."""
    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes()
    decoder = _decoder()
    with _lock:
        decoder.start_utt()
        decoder.process_raw(pcm, full_utt=True)
        decoder.end_utt()
        words = [(_word(s.word), float(s.prob)) for s in decoder.seg() if s.word not in _NOT_WORDS]
    # Fillers ("[NOISE]", "++UH++") are not words of the transcript either.
    words = [(word, prob) for word, prob in words if word[:1].isalnum() or word[:1] == "'"]
    if not words:
        return Transcript("", 1.0)
    confidence = float(np.clip(np.mean([prob for _, prob in words]), 0.0, 1.0))
    return Transcript(" ".join(word for word, _ in words), confidence)
