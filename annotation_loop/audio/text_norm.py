"""One normal form of a transcript, shared by training targets and error rates: lower case,
no punctuation but apostrophes, single spaces. Annotators type "Great film!", recognisers
say "great film": the same words."""

from __future__ import annotations

import re

_NOT_WORD = re.compile(r"[^\w\s']|_")
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    return _SPACES.sub(" ", _NOT_WORD.sub(" ", text.lower())).strip()
