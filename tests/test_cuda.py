"""The CUDA paths (bf16 autocast, device moves, peak memory): run only where a GPU is present."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.numpy import load_file

import tunebench
from tunebench.data import DataConfig
from tunebench.data.text import read_texts
from tunebench.prediction import Predictor
from tunebench.store import RunStore
from tunebench.strategies import STRATEGIES
from tunebench.tasks import get_task

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
ALL = [n for n in STRATEGIES.names() if get_task("text-classification").applies(STRATEGIES.get(n)) is None]
OPTIONS = {n: cls.tiny_options for n, cls in STRATEGIES.items() if cls.tiny_options}


@pytest.mark.parametrize("precision", ["bf16", "fp32"])
def test_every_strategy_trains_on_cuda_and_predicts_on_cpu(tiny_model, tiny_data, tmp_path, precision):
    cfg = DataConfig(data=tiny_data["train"], dev=tiny_data["dev"], test=tiny_data["test"])
    rows = tunebench.compare(
        cfg,
        model=tiny_model,
        strategies=ALL,
        out=tmp_path,
        train={"epochs": 2, "batch_size": 16, "device": "cuda", "precision": precision},
        options=OPTIONS,
        show=False,
    )
    assert all(r["status"] == "ok" for r in rows), [(r["strategy"], r["status"]) for r in rows]
    texts = read_texts(tiny_data["dev"], None, None)
    for r in RunStore(tmp_path).all():
        if STRATEGIES.get(r["strategy"]).kind != "gradient":
            continue
        assert r["device"].startswith("cuda") and r["peak_memory_mb"] > 0, r["strategy"]
        # the CUDA-trained artifact predicts on the CPU in fp32 what it scored on the GPU
        run_dir = tmp_path / "runs" / r["key"]
        on_gpu = load_file(str(run_dir / "predictions.safetensors"))["dev"]
        on_cpu = Predictor(run_dir).predict_logits(texts, device="cpu")
        atol = 5e-2 if precision == "bf16" else 1e-4
        np.testing.assert_allclose(on_cpu, on_gpu, atol=atol, err_msg=r["strategy"])
