"""Data loading: table readers, the named-dataset registry, seeded splits and each task's bundles."""

from .config import DataConfig
from .named import (
    DATASETS,
    ENV_DATA_DIR,
    NamedDataset,
    data_dir_candidates,
    dataset_names,
    get_dataset,
    locate,
    register_dataset,
)
from .readers import FORMATS, Table, detect_format, load_table, read_table
from .text import DataBundle, TextSplit
from .text_classification import load_text_classification
from .text_regression import load_text_regression

__all__ = [
    "DATASETS",
    "ENV_DATA_DIR",
    "FORMATS",
    "DataBundle",
    "DataConfig",
    "NamedDataset",
    "Table",
    "TextSplit",
    "data_dir_candidates",
    "dataset_names",
    "detect_format",
    "get_dataset",
    "load_table",
    "load_text_classification",
    "load_text_regression",
    "locate",
    "read_table",
    "register_dataset",
]
