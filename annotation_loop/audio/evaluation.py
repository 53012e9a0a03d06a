"""Scoring a recogniser on annotated audio files: each file's predicted transcript against
its annotated one (speech segments in time order)."""

from __future__ import annotations

from collections.abc import Sequence

from annotation_loop.audio.checkpoint import TranscriptionCheckpoint
from annotation_loop.audio.metrics import TranscriptionScores, file_text, score_transcripts
from annotation_loop.audio.training import AnnotatedAudio
from annotation_loop.audio.transcriber import transcribe_items

# Validation files transcribed per CTC forward pass (regions of files, batched).
EVALUATION_BATCH = 16


def evaluate_recogniser(
    model: TranscriptionCheckpoint, files: Sequence[AnnotatedAudio]
) -> TranscriptionScores:
    """WER/CER of `model` on the files. A file it skips (unreadable, no speech found) counts
    as transcribed to nothing: its annotated words are deletions."""
    transcribed, _ = transcribe_items(
        model, ((f.key, f.data) for f in files), batch_size=EVALUATION_BATCH
    )
    by_key = {item.key: item for item in transcribed}
    references, hypotheses = [], []
    for item in files:
        references.append(
            file_text([s.text for s in item.segments if s.label == model.speech_label])
        )
        found = by_key.get(item.key)
        hypotheses.append(file_text([s.text for s in found.segments]) if found else "")
    return score_transcripts(references, hypotheses)
