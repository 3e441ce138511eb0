"""The Python API as a scikit-learn user expects it: a typed, documented `compare` returning a result
object, and nothing global left changed after the call."""

from __future__ import annotations

import inspect
import warnings

import pytest
from transformers.utils import logging as hf_logging

import tunebench
from tunebench.data import DataConfig


def test_compare_returns_the_leaderboard_with_records_best_and_export(tiny_model, tiny_data, tmp_path):
    data = DataConfig(data=tiny_data["train"], dev=tiny_data["dev"], test=tiny_data["test"])
    filters = list(warnings.filters)
    bars = hf_logging.is_progress_bar_enabled()
    result = tunebench.compare(
        data, model=tiny_model, strategies=["features", "head"], out=tmp_path, show=False
    )
    assert warnings.filters == filters and hf_logging.is_progress_bar_enabled() == bars  # nothing left behind
    assert isinstance(result, list) and result.rows == list(result)
    assert result.best is result[0] and result.metric == "accuracy"
    assert sorted(r["strategy"] for r in result.records) == ["features", "head"]
    dest = result.export(tmp_path / "best")
    assert (dest / "manifest.json").is_file()
    assert tunebench.Predictor(dest).task.name == "text-classification"
    assert "best" in repr(result) and "2 strategies" in repr(result)


def test_to_pandas_indexes_by_strategy(tiny_model, tiny_data, tmp_path):
    pd = pytest.importorskip("pandas")
    data = DataConfig(data=tiny_data["train"], dev=tiny_data["dev"])
    frame = tunebench.compare(
        data, model=tiny_model, strategies=["features"], out=tmp_path, show=False
    ).to_pandas()
    assert isinstance(frame, pd.DataFrame) and list(frame.index) == ["features"] and "dev_mean" in frame


def test_compare_signature_and_docs_read_like_scikit_learn():
    params = inspect.signature(tunebench.compare).parameters
    assert list(params)[:5] == ["data", "model", "strategies", "seeds", "out"]
    assert params["search"].kind is inspect.Parameter.KEYWORD_ONLY
    doc = inspect.getdoc(tunebench.compare)
    for section in ("Parameters", "Returns", "Examples"):
        assert f"{section}\n---" in doc
    for name in ("data", "strategies", "search", "storage", "devices"):
        assert f"\n{name} :" in doc
