"""How fast speech goes through the loop's models, on this machine: for the closing figures
(benchmarks/loop_figures.py calls `measure_throughput`)."""

from __future__ import annotations

import time
from typing import Any

from annotation_loop.audio.checkpoint import TranscriptionCheckpoint
from annotation_loop.audio.decoding import decode_audio, duration_s
from annotation_loop.audio.demo_data import demo_sentences, encode, speech_file
from annotation_loop.audio.speech_synthesis import SPEEDS, VOICES
from annotation_loop.audio.train_config import RANDOM_TINY, TranscriptionTrainConfig
from annotation_loop.audio.training import AnnotatedAudio, train_recogniser
from annotation_loop.audio.transcriber import transcribe_items


def demo_files(count: int) -> list[AnnotatedAudio]:
    """`count` WAV files of two demo sentences each, with their true segments."""
    sentences = demo_sentences()
    files = []
    for i in range(count):
        voice, speed = VOICES[i % len(VOICES)], SPEEDS[i % len(SPEEDS)]
        samples, rate, truth = speech_file(sentences[2 * i : 2 * i + 2], voice, speed, "Speech")
        files.append(AnnotatedAudio(f"f{i}", encode(samples, rate, "WAV", "PCM_16"), truth))
    return files


def measure_throughput(files: int = 6, ctc_epochs: int = 3, batch_size: int = 8) -> dict[str, Any]:
    """Seconds of audio per second: pre-annotation (decode + VAD + pocketsphinx, models
    already loaded) and fine-tuning the tiny random CTC model (`ctc_epochs` epochs)."""
    audio = demo_files(files)
    seconds_of_audio = sum(duration_s(decode_audio(f.data, f.key)) for f in audio)
    pocketsphinx = TranscriptionCheckpoint("pocketsphinx", "pocketsphinx", "Speech")
    transcribe_items(pocketsphinx, [(audio[0].key, audio[0].data)], batch_size)  # load models
    started = time.perf_counter()
    transcribe_items(pocketsphinx, ((f.key, f.data) for f in audio), batch_size)
    pre_annotation = seconds_of_audio / (time.perf_counter() - started)
    config = TranscriptionTrainConfig(
        base_model=RANDOM_TINY, epochs=ctc_epochs, batch_size=batch_size, learning_rate=3e-3
    )
    _, report = train_recogniser(audio, "Speech", config, None)
    return {
        "files": files,
        "audio_seconds": seconds_of_audio,
        "pre_annotation_audio_s_per_s": pre_annotation,
        "ctc_training_audio_s_per_s": report["audio_seconds_per_second"],
        "ctc_training_device": report["device"],
    }
