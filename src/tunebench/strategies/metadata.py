"""The metadata-only baseline: the `--feature-cols` columns alone, no text, through the same linear
probe as `features` (C chosen on dev). Beside the text-only and fused rows it shows what the text adds
to the columns and what the columns add to the text."""

from __future__ import annotations

from dataclasses import dataclass

from .base import STRATEGIES
from .features import Features


@STRATEGIES.register("metadata")
@dataclass
class Metadata(Features):
    ladder = 0  # first: the cheapest row, in the default ladder whenever the data has feature columns
    curve = False
    hints = None
    summary = "the --feature-cols columns alone (no text) -> logistic regression: what the text adds"
    requires = {"feature-columns": "it reads only the --feature-cols columns; give some"}
    reads_text = False  # the columns only: the backbone never runs (pooling and layers do not apply)
