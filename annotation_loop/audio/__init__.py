"""Speech: decoding audio files, finding speech in them (voice-activity detection), and the
recognisers that transcribe it (pocketsphinx, shipped in its wheel; wav2vec2-style CTC models
fine-tuned on the annotations)."""
