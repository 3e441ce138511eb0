"""Text (and text-pair) classification: a label per text, accuracy and macro-F1."""

from .task import ClassificationHead, TextClassification, tokenize

__all__ = ["ClassificationHead", "TextClassification", "tokenize"]
