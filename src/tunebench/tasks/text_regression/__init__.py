"""Text (pair) regression: a number per text or text pair (STS-B), Spearman and Pearson x100."""

from .task import TextRegression, pearson, ranks, spearman

__all__ = ["TextRegression", "pearson", "ranks", "spearman"]
