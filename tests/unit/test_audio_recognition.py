"""Speech found and transcribed offline: espeak-ng clips, silero VAD, pocketsphinx, and the
task type skipping files it cannot use."""

import io

import jiwer
import numpy as np
import pytest
import soundfile

from annotation_loop.audio.checkpoint import TranscriptionCheckpoint
from annotation_loop.audio.decoding import SAMPLE_RATE, decode_audio
from annotation_loop.audio.demo_data import encode, speech_file
from annotation_loop.audio.metrics import score_transcripts
from annotation_loop.audio.segments import Segment
from annotation_loop.audio.vad import speech_regions
from annotation_loop.task_types import Example, get_task_type

SENTENCES = ["the movie was a delight from start to finish", "one of the best films of the year"]
POCKETSPHINX = TranscriptionCheckpoint("pocketsphinx", "pocketsphinx", "Speech")


@pytest.fixture(scope="module")
def spoken():
    """Two sentences with a second of silence between them, as an OGG file, and their truth."""
    samples, rate, truth = speech_file(SENTENCES, "en-us+klatt2", 175, "Speech")
    return encode(samples, rate, "OGG", "VORBIS"), truth


def test_files_decode_to_16_khz_mono(spoken):
    stereo = np.stack([np.linspace(-0.5, 0.5, 44_100)] * 2, axis=1)
    buffer = io.BytesIO()
    soundfile.write(buffer, stereo, 44_100, format="FLAC")
    samples = decode_audio(buffer.getvalue(), "x.flac")
    assert samples.dtype == np.float32 and samples.ndim == 1 and len(samples) == SAMPLE_RATE


def test_vad_finds_each_sentence(spoken):
    data, truth = spoken
    regions = speech_regions(decode_audio(data, "two.ogg"))
    assert len(regions) == 2
    for (start, end), segment in zip(regions, truth, strict=True):
        # Each region holds its sentence, give or take the VAD's padding and the silence
        # around it (0.4 s at the file's ends).
        assert segment.start - 0.5 < start < segment.start + 0.2
        assert segment.end - 0.2 < end < segment.end + 0.5


def test_pocketsphinx_transcribes_synthesised_speech(spoken):
    data, _ = spoken
    [prediction], skipped = get_task_type("transcription").predict(
        POCKETSPHINX, [("k", data)], batch_size=4
    )
    assert not skipped and len(prediction.target) == 2
    said = " ".join(s.text for s in prediction.target)
    assert jiwer.wer(" ".join(SENTENCES), said) < 0.4
    assert all(0 < s.score <= 1 and s.label == "Speech" for s in prediction.target)
    assert 0 < prediction.score <= 1 and prediction.uncertainty == pytest.approx(
        1 - prediction.score
    )
    assert prediction.embedding is None, "pocketsphinx has no features to rank diversity by"


def test_corrupt_and_silent_files_are_skipped_with_one_line_each(spoken, caplog):
    silence = encode(np.zeros(SAMPLE_RATE, np.float32), SAMPLE_RATE, "WAV", "PCM_16")
    inputs = [("corrupt", b"RIFF not really"), ("silent", silence), ("speech", spoken[0])]
    with caplog.at_level("WARNING"):
        predictions, skipped = get_task_type("transcription").predict(POCKETSPHINX, inputs, 4)
    assert [p.key for p in predictions] == ["speech"] and skipped == ["corrupt", "silent"]
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert "corrupt: not a readable audio file" in lines[0] and "silent: no speech" in lines[1]


def test_an_annotator_region_gets_its_transcript(spoken):
    data, truth = spoken
    times = {"start": truth[1].start, "end": truth[1].end}
    region = {"id": "r1", "from_name": "label", "to_name": "audio", "type": "labels",
              "value": times | {"labels": ["Speech"]}}  # fmt: skip
    answer = get_task_type("transcription").predict_region(POCKETSPHINX, data, region)
    assert answer["id"] == "r1" and answer["type"] == "textarea"
    assert jiwer.wer(SENTENCES[1], answer["value"]["text"][0]) < 0.5 and 0 < answer["score"] <= 1


def test_evaluation_scores_the_files_words(spoken):
    data, truth = spoken
    evaluation = get_task_type("transcription").evaluate(POCKETSPHINX, [Example("k", data, truth)])
    assert evaluation.metrics.n_examples == 1 and evaluation.metrics.wer < 0.4
    assert evaluation.score("word_accuracy") == pytest.approx(1 - evaluation.metrics.wer)
    assert evaluation.figure.size[0] > 100


def test_error_rates_match_jiwer_on_a_hand_checked_case():
    references = ["The cat sat.", "a b c d", "   "]  # the blank one has no error rate
    hypotheses = ["the cat sat on", "a x c", "noise"]
    scores = score_transcripts(references, hypotheses)
    # 1 insertion + 1 substitution + 1 deletion over 3 + 4 reference words.
    assert (
        scores.wer == pytest.approx(3 / 7) == jiwer.wer(["the cat sat", "a b c d"], hypotheses[:2])
    )
    assert scores.cer == pytest.approx(jiwer.cer(["the cat sat", "a b c d"], hypotheses[:2]))
    assert (scores.substitutions, scores.deletions, scores.insertions) == (1, 1, 1)
    assert scores.word_accuracy == pytest.approx(4 / 7) and scores.n_examples == 2
    assert scores.per_file_wer == pytest.approx([1 / 3, 2 / 4])
    assert score_transcripts(["a"], ["a b c d"]).word_accuracy == 0.0, "never below zero"


def test_segments_carry_the_speech_label():
    assert Segment(0.0, 1.0, "x", "Speech").score is None
