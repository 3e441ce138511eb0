"""Extractive question answering (SQuAD v1.1): windows, span head, SQuAD F1 / EM; frozen features
train the span reader of `reader.py` on cached token states."""

from .task import MASKED, QuestionAnswering, SpanHead

__all__ = ["MASKED", "QuestionAnswering", "SpanHead"]
