"""Speech synthesised with Debian's espeak-ng: clips with known transcripts, for the demo and
the tests. The text goes to espeak-ng on stdin, never through a shell."""

from __future__ import annotations

import io
import shutil
import subprocess

import numpy as np

from annotation_loop.errors import ConfigurationError

# espeak-ng's formant voices that pocketsphinx's en-US model understands best (WER ~0.2 on
# review snippets; its default en-us voice gives ~0.8).
VOICES = ("en-us+klatt2", "en-us+klatt4", "en-us+f2")
SPEEDS = (165, 190)  # words per minute
SYNTHESIS_TIMEOUT_S = 60


def espeak_binary() -> str:
    """The espeak-ng executable; a `ConfigurationError` saying how to install it."""
    found = shutil.which("espeak-ng") or shutil.which("espeak-ng", path="/usr/bin")
    if found is None:
        raise ConfigurationError(
            "espeak-ng is not installed, and the speech demo synthesises its audio with it: "
            "install Debian's espeak-ng (make install does it)"
        )
    return found


def synthesise(text: str, voice: str, speed: int) -> tuple[np.ndarray, int]:
    """(mono float32 samples, sample rate) of `text` spoken by espeak-ng, trimmed to the
    speech (espeak-ng pads its clips with silence)."""
    import soundfile

    wav = subprocess.run(
        [espeak_binary(), "--stdout", "-v", voice, "-s", str(speed)],
        input=text.encode(),
        capture_output=True,
        check=True,
        timeout=SYNTHESIS_TIMEOUT_S,
    ).stdout
    samples, rate = soundfile.read(io.BytesIO(wav), dtype="float32")
    loud = np.flatnonzero(np.abs(samples) > 1e-3)
    if not len(loud):
        raise ConfigurationError(f"espeak-ng made no sound for {text!r} with voice {voice}")
    return samples[loud[0] : loud[-1] + 1], int(rate)
