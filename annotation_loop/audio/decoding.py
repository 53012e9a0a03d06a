"""Audio files -> 16 kHz mono float32 samples, the rate every recogniser here expects."""

from __future__ import annotations

import io
from math import gcd

import numpy as np

from annotation_loop.errors import LoopError

SAMPLE_RATE = 16_000
# What soundfile (libsndfile) decodes: the formats a batch's audio items may have.
AUDIO_SUFFIXES = frozenset({".wav", ".flac", ".mp3", ".ogg"})


class UnreadableAudioError(LoopError):
    """An audio file that cannot be decoded, or holds no samples."""


def decode_audio(data: bytes, where: str) -> np.ndarray:
    """The file's samples as 16 kHz mono float32 in [-1, 1]; `UnreadableAudioError` (one line
    naming `where`) for a corrupt, unsupported or empty file."""
    import soundfile

    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (soundfile.LibsndfileError, RuntimeError, TypeError, ValueError) as exc:
        # libsndfile's own words ("Format not recognised."), not the repr of our buffer.
        problem = getattr(exc, "error_string", None) or str(exc) or type(exc).__name__
        problem = problem.splitlines()[0]
        raise UnreadableAudioError(f"{where}: not a readable audio file ({problem})") from None
    if samples.size == 0:
        raise UnreadableAudioError(f"{where}: the audio file holds no samples")
    return resample(samples.mean(axis=1), int(rate))


def resample(samples: np.ndarray, rate: int) -> np.ndarray:
    """`samples` at `rate` Hz resampled to SAMPLE_RATE with a polyphase filter (exact ratio,
    anti-aliased), as float32."""
    from scipy.signal import resample_poly

    if rate == SAMPLE_RATE:
        return np.ascontiguousarray(samples, dtype=np.float32)
    common = gcd(rate, SAMPLE_RATE)
    resampled = resample_poly(samples, SAMPLE_RATE // common, rate // common)
    return np.clip(resampled, -1.0, 1.0).astype(np.float32)


def cut(samples: np.ndarray, start_s: float, end_s: float) -> np.ndarray:
    """The samples between two times in seconds (clipped to the audio)."""
    start = max(0, round(start_s * SAMPLE_RATE))
    end = min(len(samples), round(end_s * SAMPLE_RATE))
    return samples[start:end]


def duration_s(samples: np.ndarray) -> float:
    return len(samples) / SAMPLE_RATE
