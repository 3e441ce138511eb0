"""Slow: the real packaged all-MiniLM-L6-v2 on real SST-2 rows (select with -m slow)."""

from __future__ import annotations

import pytest

import tunebench
from tunebench.backbones import load_backbone
from tunebench.data import DataConfig

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def minilm():
    return load_backbone("minilm")


def test_packaged_minilm_loads_offline_with_mean_pooling(minilm):
    assert minilm.pooling == "mean"  # declared by its sentence-transformers pooling config
    assert minilm.max_length == 256  # sentence_bert_config.json max_seq_length
    assert minilm.newly_initialized == []
    assert minilm.num_layers == 6 and minilm.hidden_size == 384
    total = sum(p.numel() for p in minilm.model.parameters())
    assert total == 22_713_216 - (384 * 384 + 384)  # the checkpoint minus the unused tanh pooler


def test_frozen_features_and_head_beat_chance_on_sst2(shared_data, tmp_path):
    data = DataConfig(data="sst2", data_dir=str(shared_data), train_size=400, eval_size=200)
    rows = tunebench.compare(data, strategies=["features", "head"], out=tmp_path, show=False)
    acc = {r["strategy"]: r["dev_mean"] for r in rows}
    # MiniLM mean-pooled features separate sentiment well even from 400 examples; a head on a
    # random pooler or on [CLS] of this model would sit much nearer 0.5.
    assert acc["features"] > 0.72, acc
    assert acc["head"] > 0.70, acc


def test_offline_uncached_hub_id_fails_with_one_line(monkeypatch):
    from tunebench.errors import TunebenchError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(TunebenchError, match="cannot load"):
        load_backbone("some-org/not-a-cached-model")
