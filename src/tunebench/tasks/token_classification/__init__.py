"""Token classification (NER): a tag per word, entity-level F1; frozen features train the BiLSTM
tagger of `tagger.py` on cached word vectors."""

from .task import TokenClassification, TokenSplit

__all__ = ["TokenClassification", "TokenSplit"]
