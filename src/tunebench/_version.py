"""The package version, at the bottom of the layers so every module may record it."""

__version__ = "0.1.0"
