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


def test_every_export_of_the_real_model_loads_with_plain_transformers(shared_data, tmp_path, minilm):
    """The acceptance check of standalone exports on the packaged MiniLM: full, adapters, LoRA (merged and
    as an adapter) and prefix exports, loaded in a process without tunebench, give tunebench's logits on
    real SST-2 sentences; the adapters name the hub id as their base."""
    import json

    from test_export_standalone import cases_for, run_plain

    from tunebench.exporting import export_run
    from tunebench.store import RunStore
    from tunebench.tasks import get_task

    data = DataConfig(data="sst2", data_dir=str(shared_data), train_size=64, eval_size=32)
    names = ["full", "adapters", "lora", "prefix"]
    tunebench.compare(data, strategies=names, out=tmp_path / "out", show=False, train={"epochs": 1})
    exported = {}
    for record in RunStore(tmp_path / "out").all():
        dest = exported[record["strategy"]] = tmp_path / "exports" / record["strategy"]
        export_run(tmp_path / "out" / "runs" / record["key"], dest)
    assert set(exported) == set(names)
    for name in ("lora", "prefix"):
        config = json.loads((exported[name] / "adapter" / "adapter_config.json").read_text())
        assert config["base_model_name_or_path"] == "sentence-transformers/all-MiniLM-L6-v2"
    texts = ["a gorgeous, witty, seductive movie.", "the plot is nothing but boilerplate clichés"]
    batch = {k: v.numpy() for k, v in minilm.tokenizer(texts, padding=True, return_tensors="pt").items()}
    cases = cases_for(exported, get_task("text-classification"), batch, tmp_path, base=minilm.path)
    assert run_plain(cases, batch, tmp_path).count("ok ") == len(cases) == 5  # 3 whole + 2 adapters
