"""Voice-activity detection with silero-vad's packaged model: where in a long file people
speak, so that it becomes regions with timestamps, each transcribed on its own."""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import numpy as np

from annotation_loop.audio.decoding import SAMPLE_RATE

# Pauses shorter than this stay inside one region: sentences, not words.
MIN_SILENCE_MS = 300
# Padding kept around each region, so that no word's first or last sound is cut off.
SPEECH_PAD_MS = 100

# The model is stateful while it scans a file: one scan at a time per process.
_lock = threading.Lock()


@cache
def _model() -> Any:
    """The silero VAD model, loaded once per process (it ships inside the package)."""
    import warnings

    from silero_vad import load_silero_vad

    with warnings.catch_warnings():  # torch.jit.load's deprecation notice, not ours to fix
        warnings.simplefilter("ignore", FutureWarning)
        return load_silero_vad()


def speech_regions(samples: np.ndarray) -> list[tuple[float, float]]:
    """(start, end) in seconds of each stretch of speech in 16 kHz `samples`, in order."""
    import torch
    from silero_vad import get_speech_timestamps

    model = _model()
    with _lock, torch.inference_mode():
        stamps = get_speech_timestamps(
            torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)),
            model,
            sampling_rate=SAMPLE_RATE,
            min_silence_duration_ms=MIN_SILENCE_MS,
            speech_pad_ms=SPEECH_PAD_MS,
        )
    return [(s["start"] / SAMPLE_RATE, s["end"] / SAMPLE_RATE) for s in stamps]
