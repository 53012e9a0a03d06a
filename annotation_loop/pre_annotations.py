"""Where `BatchPredictions` lived before the layout by concern: ZenML records each artifact's type
by import path, so artifacts stored then still load from here."""

from annotation_loop.learning.pre_annotations import BatchPredictions

__all__ = ["BatchPredictions"]
