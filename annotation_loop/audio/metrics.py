"""Word and character error rates of transcripts (jiwer), as the task type's declared scores
(`TranscriptionScores`, declared with the task type so that importing either module first
works), and the figure that explains them: how the error spreads over the validation files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from annotation_loop.audio.text_norm import normalise
from annotation_loop.task_types.transcription import TranscriptionScores

if TYPE_CHECKING:
    from PIL.Image import Image


def file_text(texts: Sequence[str]) -> str:
    """One file's transcript from its segments' texts (in time order), normalised."""
    return normalise(" ".join(texts))


def score_transcripts(references: Sequence[str], hypotheses: Sequence[str]) -> TranscriptionScores:
    """Scores of hypothesis transcripts against references, one pair per file (normalised
    here). Files whose reference holds no words have no error rate and are left out."""
    import jiwer

    pairs = [(normalise(r), normalise(h)) for r, h in zip(references, hypotheses, strict=True)]
    pairs = [(r, h) for r, h in pairs if r]
    if not pairs:
        return TranscriptionScores(
            n_examples=0, word_accuracy=0.0, wer=1.0, cer=1.0, n_words=0, substitutions=0,
            deletions=0, insertions=0, per_file_wer=[],
        )  # fmt: skip
    refs, hyps = [r for r, _ in pairs], [h for _, h in pairs]
    words = jiwer.process_words(refs, hyps)
    return TranscriptionScores(
        n_examples=len(pairs),
        word_accuracy=max(0.0, 1.0 - words.wer),
        wer=words.wer,
        cer=jiwer.cer(refs, hyps),
        n_words=words.hits + words.substitutions + words.deletions,
        substitutions=words.substitutions,
        deletions=words.deletions,
        insertions=words.insertions,
        per_file_wer=[jiwer.wer(r, h) for r, h in pairs],
    )


def plot_error_rates(scores: TranscriptionScores) -> Image:
    """A histogram of the validation files' WER, titled with the corpus-level scores."""
    # Here, not at the top: the task type registry imports this module, and matplotlib
    # takes a second to import.
    from annotation_loop.learning.plots import new_figure, to_image

    figure = new_figure(5.0, 3.5)
    axes = figure.add_subplot()
    top = max([1.0, *scores.per_file_wer])
    axes.hist(scores.per_file_wer, bins=10, range=(0.0, top), color="tab:blue")
    axes.set_xlabel("WER of a validation file")
    axes.set_ylabel("Files")
    axes.set_title(
        f"WER {scores.wer:.1%}, CER {scores.cer:.1%}\n"
        f"on {scores.n_words} words in {scores.n_examples} files"
    )
    return to_image(figure)
