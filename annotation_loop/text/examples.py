"""Labelled texts, as training and evaluation take them (no torch here: the demo datasets
and the task types import these cheaply)."""

from __future__ import annotations

from dataclasses import dataclass

from annotation_loop.text.spans import Span


@dataclass(frozen=True)
class TextExample:
    """A text with its class label."""

    key: str
    text: str
    label: str


@dataclass(frozen=True)
class SpanExample:
    """A text with its entity spans, in text order."""

    key: str
    text: str
    spans: tuple[Span, ...]
