"""L2-SP (Li et al. 2018): a penalty toward the weights training started from, on every gradient strategy."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from transformers import AutoModel

import tunebench
from tunebench.data import DataConfig
from tunebench.errors import TunebenchError
from tunebench.prediction import Predictor
from tunebench.training.config import TrainConfig
from tunebench.training.loop import l2sp_penalty


def test_the_penalty_is_the_squared_distance_of_what_trains():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        model[0].weight += 0.5  # 4 entries moved by 0.5
        model[1].bias += 2.0
    model[1].bias.requires_grad_(False)  # frozen now: not penalised
    assert l2sp_penalty(model, anchor).item() == pytest.approx(4 * 0.25)


def _distance(run_dir, tiny_model) -> float:
    """|w - w0| of the exported backbone from the pre-trained one."""
    trained = Predictor(run_dir).model.backbone.state_dict()
    base = AutoModel.from_pretrained(tiny_model).state_dict()
    return sum(float((trained[k] - base[k]).pow(2).sum()) for k in trained if k in base) ** 0.5


def test_l2sp_keeps_full_fine_tuning_near_the_pretrained_weights(tiny_model, tiny_data, tmp_path):
    data = DataConfig(data=tiny_data["train"], dev=tiny_data["dev"])
    kw = dict(model=tiny_model, strategies=["full"], show=False)
    train = {"epochs": 2, "lr": 1e-3}
    plain = tunebench.compare(data, out=tmp_path, train=train, **kw).records[0]
    held = tunebench.compare(data, out=tmp_path, train={**train, "l2sp": 50.0}, **kw).records[0]
    assert plain["status"] == held["status"] == "ok"
    assert held["train_config"]["l2sp"] == 50.0 and plain["key"] != held["key"]
    far = _distance(tmp_path / "runs" / plain["key"], tiny_model)
    near = _distance(tmp_path / "runs" / held["key"], tiny_model)
    assert near < 0.5 * far, (near, far)


def test_l2sp_is_refused_below_zero_and_left_out_of_keys_at_zero():
    with pytest.raises(TunebenchError, match="--l2sp must be >= 0"):
        TrainConfig(l2sp=-1.0)
    assert "l2sp" not in TrainConfig().identity()
