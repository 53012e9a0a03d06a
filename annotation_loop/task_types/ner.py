"""Named-entity recognition: labelled character spans of a text, a transformers token
classifier fine-tuned on BIO tags aligned to the tokenizer's offsets."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import quoteattr

import numpy as np

from annotation_loop.data.storage import ObjectStore
from annotation_loop.errors import UnknownLabelError
from annotation_loop.task_types.base import Evaluation, Example, Prediction, TaskDefaults
from annotation_loop.task_types.capabilities import (
    DemoData,
    InteractivePrediction,
    LabelReview,
    LabelUnits,
    RegionError,
)
from annotation_loop.task_types.choices import check_labels
from annotation_loop.task_types.metrics import EntityScores
from annotation_loop.task_types.text_source import TO_NAME, TextTaskType
from annotation_loop.text.datasets import WNUT_TYPES
from annotation_loop.text.spans import (
    LABELS_REGION,
    OUTSIDE,
    CharRange,
    Span,
    relabel_words,
    result_from_spans,
    spans_from_result,
    word_types,
)

if TYPE_CHECKING:
    from annotation_loop.text.entity_metrics import EntityMetrics

Spans = tuple[Span, ...]


def _classes(model: Any) -> tuple[str, ...]:
    """A word's classes in label-issue review: "O", then the tagger's entity types."""
    from annotation_loop.text.tagger import entity_labels_of

    return (OUTSIDE, *entity_labels_of(model))


def _class_index(kind: str, classes: tuple[str, ...], what: str) -> int:
    if kind not in classes:
        raise UnknownLabelError(
            f"{what} is an entity of type {kind!r}, which the model does not tag "
            f"({list(classes[1:])}): train a model on the current label list first"
        )
    return classes.index(kind)


def span_entity_type(
    words: Sequence[CharRange], probabilities: np.ndarray, tags: Sequence[str], span: CharRange
) -> tuple[str, float] | None:
    """The entity type the tagger gives the words overlapping `span`, and its score.

    A type's probability for a word is that of its B- and I- tags together (the annotator
    chose where the entity starts); the answer is the type with the highest mean over the
    span's words, with that mean: low when the tagger thinks the span names no entity. None
    when no word overlaps the span.
    """
    start, end = span
    inside = [
        i for i, (word_start, word_end) in enumerate(words) if word_start < end and start < word_end
    ]
    if not inside:
        return None
    kinds = [tag.removeprefix("B-") for tag in tags if tag.startswith("B-")]
    means = probabilities[inside].mean(axis=0)
    scores = [
        float(means[tags.index(f"B-{kind}")] + means[tags.index(f"I-{kind}")]) for kind in kinds
    ]
    best = int(np.argmax(scores))
    return kinds[best], min(scores[best], 1.0)


def _region_range(region: Mapping[str, Any], text: str) -> CharRange:
    """The region's character range in `text`, checked; `RegionError` if it has none there."""
    value = region.get("value")
    if not isinstance(value, dict):
        value = {}
    start, end, said = value.get("start"), value.get("end"), value.get("text")
    if not (isinstance(start, int) and isinstance(end, int)):
        raise RegionError(
            f"Region {region.get('id')!r} has no character offsets (value.start/end are "
            f"{start!r}, {end!r}): select the span in a <Text> object"
        )
    if not 0 <= start < end <= len(text):
        raise RegionError(
            f"Region {region.get('id')!r} [{start}, {end}) is not a non-empty range of the "
            f"{len(text)}-character text"
        )
    if said is not None and said != text[start:end]:
        raise RegionError(
            f"Region {region.get('id')!r} says {said!r} but the text at [{start}, {end}) is "
            f"{text[start:end]!r}: the task's text changed"
        )
    return start, end


def entity_evaluation(metrics: EntityMetrics) -> Evaluation:
    """`metrics` as the declared scores, with their per-type F1 plot."""
    from annotation_loop.text.entity_metrics import plot_entity_scores

    return Evaluation(
        EntityScores.model_validate(metrics, from_attributes=True), plot_entity_scores(metrics)
    )


class NamedEntityRecognition(TextTaskType, LabelReview, DemoData, InteractivePrediction):
    name = "ner"
    description = "named-entity recognition"
    metrics_type = EntityScores
    promotion_metric = "f1"  # entity-level, micro-averaged (seqeval semantics)
    agreement_kind = "spans"
    defaults = TaskDefaults(
        project_name="Tweet entities",
        model_name="tweet_tagger",
        dataset="tweets",
        labels=WNUT_TYPES,
    )

    def label_config(self, labels: Sequence[str]) -> str:
        check_labels(labels)
        options = "\n    ".join(f"<Label value={quoteattr(label)}/>" for label in labels)
        # Word granularity: an annotator's selection snaps to whole words, as predictions do.
        return (
            "<View>\n"
            f'  <Labels name="{self.from_name}" toName="{TO_NAME}">\n'
            f"    {options}\n"
            "  </Labels>\n"
            f'  <Text name="{TO_NAME}" value="$text" granularity="word"/>\n'
            "</View>"
        )

    def target_from_result(
        self, result: Sequence[dict[str, Any]], input_ref: str, labels: Sequence[str], where: str
    ) -> Spans:
        # No spans is a label too: "this text names no entity".
        spans = spans_from_result(result, input_ref, labels, self.from_name, where)
        return tuple(Span(s.start, s.end, s.label) for s in spans)

    def result_for_target(self, target: Any, input_ref: str) -> list[dict[str, Any]]:
        return result_from_spans(target, input_ref, self.from_name, TO_NAME)

    def encode_target(self, target: Any) -> Any:
        return [[span.start, span.end, span.label] for span in target]

    def decode_target(self, encoded: Any) -> Spans:
        return tuple(Span(int(start), int(end), str(label)) for start, end, label in encoded)

    def labels_of(self, target: Any) -> list[str]:
        return [span.label for span in target]

    def same_target(self, a: Any, b: Any) -> bool:
        def plain(spans: Spans) -> set[tuple[int, int, str]]:
            return {(s.start, s.end, s.label) for s in spans}

        return plain(a) == plain(b)

    def train(
        self,
        examples: Sequence[Example],
        labels: Sequence[str],
        config: Mapping[str, Any],
        init: Any | None,
    ) -> tuple[Any, dict[str, Any]]:
        from annotation_loop.text.examples import SpanExample
        from annotation_loop.text.tagger import train_tagger

        checkpoint, report = train_tagger(
            [SpanExample(e.key, e.input, tuple(e.target)) for e in examples],
            labels,
            self.train_config_type(**config),
            init=init,
        )
        summary = asdict(report)
        summary["items_per_second"] = summary.pop("texts_per_second")
        return checkpoint, summary

    def predict(
        self, model: Any, inputs: Iterable[tuple[str, Any]], batch_size: int
    ) -> tuple[list[Prediction], list[str]]:
        from annotation_loop.text.tagger import predict_spans

        predictions = predict_spans(model, inputs, batch_size=batch_size)
        return [
            Prediction(p.key, tuple(p.spans), p.score, p.uncertainty, p.embedding)
            for p in predictions
        ], []

    def evaluate(self, model: Any, examples: Sequence[Example]) -> Evaluation:
        from annotation_loop.text.examples import SpanExample
        from annotation_loop.text.tagger import evaluate_tagger

        metrics = evaluate_tagger(
            model, [SpanExample(e.key, e.input, tuple(e.target)) for e in examples]
        )
        return entity_evaluation(metrics)

    def label_units(
        self, model: Any, examples: Sequence[Example], batch_size: int = 64
    ) -> LabelUnits:
        """One unit per word of every text: its features, and its entity type ("O" or a
        type, no B/I) under the annotation's spans."""
        from annotation_loop.text.tagger import word_features

        classes = _classes(model)
        if not examples:
            return LabelUnits.empty(classes)
        texts = word_features(
            model, [(str(i), e.input) for i, e in enumerate(examples)], batch_size
        )
        given = [
            _class_index(kind, classes, f"A word of {example.key}")
            for example, words in zip(examples, texts, strict=True)
            for kind in word_types(words.ranges, example.target)
        ]
        counts = [len(words.ranges) for words in texts]
        return LabelUnits(
            features=np.concatenate([words.features for words in texts]),
            given=np.array(given, dtype=np.int64),
            example=np.repeat(np.arange(len(texts), dtype=np.int64), counts),
            position=np.concatenate([np.arange(n, dtype=np.int64) for n in counts]),
            classes=classes,
        )

    def suggest_target(self, model: Any, example: Example, suggestions: Mapping[int, str]) -> Spans:
        """The annotation's spans with these words (indexes as in `label_units`) re-typed."""
        from annotation_loop.text.tagger import text_words

        classes = _classes(model)
        for kind in suggestions.values():
            _class_index(kind, classes, f"The suggestion for {example.key}")
        words = text_words(model, example.input)
        return tuple(relabel_words(example.input, example.target, words, suggestions))

    def predict_region(
        self, model: Any, input: Any, region: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """For a span the annotator selected: the same span, labelled with the entity type
        the tagger gives its words, and that type's score."""
        from annotation_loop.text.tagger import word_tag_probabilities

        if region.get("type") != LABELS_REGION or region.get("from_name") != self.from_name:
            return None
        start, end = _region_range(region, input)
        words, probabilities = word_tag_probabilities(model, input)
        answer = span_entity_type(words, probabilities, model.labels, (start, end))
        if answer is None:
            raise RegionError(f"Region {region.get('id')!r} [{start}, {end}) covers no word")
        kind, score = answer
        result: dict[str, Any] = {
            "from_name": self.from_name,
            "to_name": region.get("to_name", TO_NAME),
            "type": LABELS_REGION,
            "value": {"start": start, "end": end, "text": input[start:end], "labels": [kind]},
            "score": score,
        }
        if "id" in region:
            result["id"] = region["id"]
        return result

    def seed_demo(
        self, store: ObjectStore, batches: int, batch_size: int, seed: int
    ) -> dict[str, Any]:
        from annotation_loop.text.datasets import seed_tweet_batches

        return seed_tweet_batches(store, batches, batch_size, seed)
