"""Wrong labels of the kind a careless annotator gives: known noise for the benchmarks and the
simulated annotators, never for real use.

Each task type errs in its own unit, one unit per wrong target, so that a wrong target is
as close to the right one as a slip makes it: a classified item gets another label, chosen
uniformly; an NER text one span relabelled; an image one box relabelled; a transcript one
word replaced. A span or box whose label has no alternative (the project has one label) is
dropped instead: a missed entity or object. A target with no unit to spoil (a text with no
entity, an image with no box, a silent recording) is returned unchanged: an annotator who
invents regions is another kind of error, and inventing one would need the input itself.
Callers that count wrong targets compare the result with the target.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from typing import Any, TypeVar

from annotation_loop.audio.segments import Segment
from annotation_loop.detection.boxes import Box, ImageBoxes
from annotation_loop.errors import ConfigurationError
from annotation_loop.task_types import TaskType
from annotation_loop.task_types.choices import SingleChoiceTaskType
from annotation_loop.task_types.detection import ObjectDetection
from annotation_loop.task_types.ner import NamedEntityRecognition
from annotation_loop.task_types.transcription import SpeechTranscription
from annotation_loop.text.spans import Span

# What a misheard word becomes: common short words, so a replaced word reads like a slip.
MISHEARD_WORDS = ("a", "the", "and", "in", "it", "of", "on", "that", "to", "was")

Unit = TypeVar("Unit", Span, Box)  # a labelled region


def _other_label(label: str, labels: Sequence[str], rng: random.Random) -> str | None:
    """Another of `labels`, uniformly; None when there is none."""
    others = sorted(set(labels) - {label})
    return rng.choice(others) if others else None


def _wrong_label(target: str, labels: Sequence[str], rng: random.Random) -> str:
    other = _other_label(target, labels, rng)
    if other is None:
        raise ConfigurationError(
            f"Cannot give a wrong label for {target!r} with labels {list(labels)}: "
            "a classification project needs at least two labels"
        )
    return other


def _relabel_or_drop(
    units: tuple[Unit, ...], labels: Sequence[str], rng: random.Random
) -> tuple[Unit, ...]:
    """`units` (spans or boxes, each with a `label`) with one of them relabelled, or dropped
    when its label has no alternative; unchanged when there are none."""
    if not units:
        return units
    changed = list(units)
    index = rng.randrange(len(changed))
    label = _other_label(changed[index].label, labels, rng)
    if label is None:
        del changed[index]
    else:
        changed[index] = dataclasses.replace(changed[index], label=label)
    return tuple(changed)


def _misheard(segments: tuple[Segment, ...], rng: random.Random) -> tuple[Segment, ...]:
    """One word of one segment's transcript replaced by a different common word."""
    words = [(i, j) for i, s in enumerate(segments) for j in range(len(s.text.split()))]
    if not words:
        return segments
    index, position = rng.choice(words)
    tokens = segments[index].text.split()
    tokens[position] = rng.choice(
        [word for word in MISHEARD_WORDS if word != tokens[position].lower()]
    )
    changed = list(segments)
    changed[index] = dataclasses.replace(changed[index], text=" ".join(tokens))
    return tuple(changed)


def wrong_target(
    task_type: TaskType, target: Any, labels: Sequence[str], rng: random.Random
) -> Any:
    """`target` (of `task_type`, labels from `labels`) as a careless annotator gets it wrong:
    see the module docstring. Draws from `rng` only, so a seeded one gives the same noise.

    Raises `ConfigurationError` for a task type whose targets it cannot spoil, and for a
    classification with fewer than two labels.
    """
    if isinstance(task_type, SingleChoiceTaskType):
        return _wrong_label(str(target), labels, rng)
    if isinstance(task_type, NamedEntityRecognition):
        return _relabel_or_drop(tuple(target), labels, rng)
    if isinstance(task_type, ObjectDetection):
        boxes: ImageBoxes = target
        return dataclasses.replace(boxes, boxes=_relabel_or_drop(boxes.boxes, labels, rng))
    if isinstance(task_type, SpeechTranscription):
        return _misheard(tuple(target), rng)
    raise ConfigurationError(
        f"No label noise for task type {task_type.name!r}: add its kind of error to "
        "annotation_loop.dev.label_noise.wrong_target"
    )
