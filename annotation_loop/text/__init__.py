"""Text task types' building blocks: transformers models, spans, text items. No ZenML."""
