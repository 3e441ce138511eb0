"""tunebench: freeze or fine-tune? Run the ladder of adaptation strategies on your data."""

__version__ = "0.1.0"


def compare(*args, **kwargs):
    """Run strategies on a dataset and return the leaderboard (see `tunebench.comparison.compare`)."""
    from .comparison import compare as _compare

    return _compare(*args, **kwargs)


def predict(*args, **kwargs):
    """Predict with an exported run (see `tunebench.prediction.predict`)."""
    from .prediction import predict as _predict

    return _predict(*args, **kwargs)


__all__ = ["compare", "predict", "__version__"]
