"""Against forgetting: L2-SP (Li et al. 2018), a penalty toward the weights training started from; EWC
(Kirkpatrick et al. 2017), the same weighted by a diagonal Fisher of the pooled embedding; and replay of
original-domain text, distilled toward the original model's embeddings. Every gradient strategy runs
them (tests/test_common.py); here, what each term is."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import pytest
import torch
from conftest import make_rows, tiny_of, write_tsv
from torch import nn
from transformers import AutoModel, BertForMaskedLM

import tunebench
from tunebench import mitigation
from tunebench.backbones import load_backbone
from tunebench.cli import main
from tunebench.comparison import resolve_strategy
from tunebench.data import DataConfig
from tunebench.data.text import read_corpus
from tunebench.errors import TunebenchError
from tunebench.model import pooled_embedding
from tunebench.prediction import Predictor
from tunebench.runner import RunInputs, build_model
from tunebench.strategies import STRATEGIES
from tunebench.tasks import get_task
from tunebench.training.batching import pad_rows
from tunebench.training.config import TrainConfig
from tunebench.training.forgetting import EWC, diagonal_fisher, embeddings, pretrained_name
from tunebench.training.loop import l2sp_penalty


def test_the_penalty_is_the_squared_distance_of_what_trains():
    model = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 1))
    anchor = {n: p.detach().clone() for n, p in model.named_parameters()}
    with torch.no_grad():
        model[0].weight += 0.5  # 4 entries moved by 0.5
        model[1].bias += 2.0
    model[1].bias.requires_grad_(False)  # frozen now: not penalised
    assert l2sp_penalty(model, anchor).item() == pytest.approx(4 * 0.25)


def _distance(run_dir, tiny_model, fisher=None) -> float:
    """|w - w0| of the exported backbone from the pre-trained one; with `fisher`, sqrt(sum F (w - w0)^2)."""
    trained = Predictor(run_dir).model.backbone.state_dict()
    base = AutoModel.from_pretrained(tiny_model).state_dict()
    if fisher is not None:
        return sum(float((fisher[k] * (trained[k] - base[k]).pow(2)).sum()) for k in fisher) ** 0.5
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


# -- EWC ----------------------------------------------------------------------------------------------

TEXTS = ["the movie was good", "awful plot and dull actor", "it is a fine film and great"]


def _mean_embed(body, batch):
    return pooled_embedding(body, batch, "mean")


def test_the_random_projection_fisher_is_the_exact_per_example_one(tiny_model):
    """sum_x diag(J_x^T J_x) / N from one backward per draw on a batch of 3 texts (cross terms vanish in
    expectation) against the exact value from a backward per example and output dimension."""
    backbone = load_backbone(tiny_model)
    body, tok = backbone.model.eval(), backbone.tokenizer
    rows = [{"input_ids": ids} for ids in tok(TEXTS)["input_ids"]]
    params = dict(body.named_parameters())
    exact = {n: torch.zeros_like(p) for n, p in params.items()}
    for row in rows:
        e = _mean_embed(body, pad_rows([row], 0))  # (1, H)
        for k in range(e.shape[1]):
            grads = torch.autograd.grad(e[0, k], list(params.values()), retain_graph=True, allow_unused=True)
            for n, g in zip(params, grads):
                if g is not None:
                    exact[n] += g.pow(2) / len(rows)
    estimate = diagonal_fisher(body, [pad_rows(rows, 0)], _mean_embed, draws=800, seed=0)
    a = torch.cat([exact[n].flatten() for n in params])
    b = torch.cat([estimate[n].flatten() for n in params])
    assert float(b.sum() / a.sum()) == pytest.approx(1.0, abs=0.03)
    assert float((b - a).norm() / a.norm()) < 0.1
    assert float(torch.corrcoef(torch.stack([a, b]))[0, 1]) > 0.99
    assert all(p.requires_grad for p in params.values())  # flags put back


class _Body(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(2, 3))
        self.bias = nn.Parameter(torch.randn(2))
        self.adapter = nn.Parameter(torch.zeros(2))  # a new module's weight: no Fisher


def test_the_ewc_penalty_is_zero_at_the_start_and_its_gradient_is_f_times_the_displacement():
    model = nn.Module()
    model.backbone, model.head = _Body(), nn.Linear(2, 1)
    fisher = {"weight": torch.rand(2, 3) + 0.1, "bias": torch.rand(2) + 0.1}
    ewc = EWC(1.0, fisher)
    assert ewc(model, 0).item() == 0.0
    moved = {n: torch.randn_like(p) for n, p in model.backbone.named_parameters()}
    with torch.no_grad():
        for n, p in model.backbone.named_parameters():
            p += moved[n]
        model.head.weight += 1.0  # the head is not anchored
    ewc(model, 1).backward()
    body = dict(model.backbone.named_parameters())
    torch.testing.assert_close(body["weight"].grad, fisher["weight"] * moved["weight"])
    torch.testing.assert_close(body["bias"].grad, fisher["bias"] * moved["bias"])
    torch.testing.assert_close(body["adapter"].grad, moved["adapter"])  # F = 1: held at its initialisation
    assert model.head.weight.grad is None


def test_peft_names_map_onto_the_pretrained_ones():
    name = "base_model.model.encoder.layer.0.attention.self.query.base_layer.weight"
    assert pretrained_name(name) == "encoder.layer.0.attention.self.query.weight"
    assert pretrained_name("encoder.layer.1.output.LayerNorm.bias") == "encoder.layer.1.output.LayerNorm.bias"


def _data(tiny_data) -> DataConfig:
    return DataConfig(data=tiny_data["train"], dev=tiny_data["dev"])


def test_ewc_keeps_full_fine_tuning_near_the_pretrained_weights(tiny_model, tiny_data, tmp_path):
    """Nearer in plain distance, and much nearer where the Fisher says the embedding depends on the
    weights (sqrt(sum F (w - w0)^2), what EWC penalises). One epoch, so that both runs keep the same
    epoch's weights."""
    kw = dict(model=tiny_model, strategies=["full"], show=False)
    train = {"epochs": 1, "batch_size": 8, "lr": 1e-3}
    plain = tunebench.compare(_data(tiny_data), out=tmp_path, train=train, **kw).records[0]
    held = tunebench.compare(_data(tiny_data), out=tmp_path, train={**train, "ewc": 100.0}, **kw).records[0]
    assert plain["status"] == held["status"] == "ok" and plain["key"] != held["key"]
    assert held["mitigation"]["ewc"]["anchored_by_fisher"] == held["total_params"] - _head_size(held)
    fisher, _ = mitigation.reference_fisher(_inputs(tiny_model, tiny_data, tmp_path), TrainConfig(ewc=1.0))
    far, near = (_distance(tmp_path / "runs" / r["key"], tiny_model) for r in (plain, held))
    assert near < 0.6 * far, (near, far)
    far, near = (_distance(tmp_path / "runs" / r["key"], tiny_model, fisher) for r in (plain, held))
    assert near < 0.3 * far, (near, far)


def _head_size(record) -> int:
    return record["total_params"] - sum(p.numel() for p in load_backbone(record["model"]).model.parameters())


def _inputs(tiny_model, tiny_data, out=None) -> RunInputs:
    task = get_task("text-classification")
    backbone = task.load_backbone(tiny_model)
    return RunInputs(task, backbone, task.load_bundle(_data(tiny_data)), out, 64)


def test_the_fisher_is_computed_once_per_reference_and_cached(tiny_model, tiny_data, tmp_path, monkeypatch):
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return diagonal_fisher(*args, **kwargs)

    monkeypatch.setattr(mitigation, "diagonal_fisher", counted)
    train = {"epochs": 1, "ewc": 1.0}
    kw = dict(model=tiny_model, out=tmp_path, train=train, show=False)
    rows = tunebench.compare(_data(tiny_data), strategies=["full", "bitfit"], seeds=[0, 1], **kw)
    assert [r["status"] for r in rows.records] == ["ok"] * 4
    assert len(calls) == 1 and len(list((tmp_path / "cache" / "fisher").glob("*.safetensors"))) == 1
    corpus = tmp_path / "reference.txt"
    corpus.write_text("\n".join(TEXTS) + "\n")
    tunebench.compare(
        _data(tiny_data), strategies=["full"], **{**kw, "train": {**train, "reference": str(corpus)}}
    )
    assert len(calls) == 2  # another reference, another Fisher


def test_the_run_key_follows_the_reference_and_replay_files_content(tmp_path):
    corpus = tmp_path / "news.txt"
    corpus.write_text("first text\n")
    ewc = TrainConfig(ewc=1.0, reference=str(corpus)).identity()
    replay = TrainConfig(replay=str(corpus)).identity()
    corpus.write_text("another text\n")
    assert TrainConfig(ewc=1.0, reference=str(corpus)).identity() != ewc
    assert TrainConfig(replay=str(corpus)).identity() != replay
    assert ewc["reference"].startswith(f"{corpus}#") and replay["replay"].startswith(f"{corpus}#")
    assert "replay_ratio" not in replay  # the default ratio leaves keys as they were
    assert TrainConfig(replay=str(corpus), replay_ratio=1.0).identity()["replay_ratio"] == 1.0
    plain = TrainConfig().identity()
    assert not {"ewc", "reference", "replay", "replay_ratio"} & set(plain)
    # settings that do nothing leave the key alone: a reference without EWC, a ratio without replay
    assert TrainConfig(reference=str(corpus), replay_ratio=2.0).identity() == plain


# -- replay -------------------------------------------------------------------------------------------


def test_replay_is_zero_before_the_first_update(tiny_model, tiny_data, tmp_path):
    corpus = tmp_path / "original.txt"
    corpus.write_text("\n".join(t for t, _ in make_rows(40, 5)) + "\n")
    inputs = _inputs(tiny_model, tiny_data)
    strategy = STRATEGIES.get("full")()
    cfg = TrainConfig(replay=str(corpus), replay_ratio=1.0, batch_size=8, precision="fp32")
    model = build_model(inputs, strategy, cfg, 0)
    term, kept = mitigation.forgetting_terms(inputs, strategy, model, cfg, 0)
    assert kept["replay"]["per_step"] == 8 and kept["replay"]["texts"] == 40
    model.train()
    assert term(model, 0).item() == pytest.approx(0.0, abs=1e-10)
    assert term(model, 5).item() == pytest.approx(0.0, abs=1e-10)  # batches cycle past the end
    with torch.no_grad():
        model.backbone.embeddings.word_embeddings.weight.mul_(1.5)
    assert term(model, 0).item() > 1e-3


def test_replay_keeps_the_replayed_embeddings_near_the_original(tiny_model, tiny_data, tmp_path):
    corpus = tmp_path / "original.txt"
    corpus.write_text("\n".join(t for t, _ in make_rows(64, 9)) + "\n")
    kw = dict(model=tiny_model, strategies=["full"], out=tmp_path, show=False)
    train = {"epochs": 2, "lr": 1e-3}
    plain = tunebench.compare(_data(tiny_data), train=train, **kw).records[0]
    replayed = tunebench.compare(
        _data(tiny_data), train={**train, "replay": str(corpus), "replay_ratio": 2.0}, **kw
    ).records[0]
    assert replayed["mitigation"]["replay"]["per_step"] == 64
    backbone = load_backbone(tiny_model)
    rows = [
        {"input_ids": ids} for ids in backbone.tokenizer(corpus.read_text().split("\n")[:-1])["input_ids"]
    ]
    original = embeddings(backbone.model, rows, _mean_embed, 0, 64)

    def drift(record) -> float:
        body = Predictor(tmp_path / "runs" / record["key"]).model.backbone
        return float((embeddings(body, rows, _mean_embed, 0, 64) - original).pow(2).mean())

    assert drift(replayed) < 0.5 * drift(plain), (drift(replayed), drift(plain))


def test_a_checkpoint_with_an_mlm_head_replays_its_masked_lm_loss(tiny_model, tiny_data, tmp_path):
    with_head = tmp_path / "mlm-model"
    BertForMaskedLM.from_pretrained(tiny_model).save_pretrained(with_head)
    for f in Path(tiny_model).glob("*"):
        if f.name.startswith(("tokenizer", "vocab")):
            shutil.copy(f, with_head / f.name)
    corpus = tmp_path / "original.txt"
    corpus.write_text("\n".join(t for t, _ in make_rows(40, 5)) + "\n")
    inputs = _inputs(str(with_head), tiny_data)
    strategy = STRATEGIES.get("lora")()
    cfg = TrainConfig(replay=str(corpus), replay_ratio=0.5, batch_size=8, precision="fp32")
    model = build_model(inputs, strategy, cfg, 0)
    term, kept = mitigation.forgetting_terms(inputs, strategy, model, cfg, 0)
    assert kept["replay"]["objective"] == "masked-lm" and kept["replay"]["per_step"] == 4
    model.train()
    loss = term(model, 0)
    assert 0.5 * 1.0 < loss.item() < 0.5 * 20  # weight x the cross-entropy of a random tiny model
    loss.backward()
    lora = [p for n, p in model.named_parameters() if "lora_B" in n]  # B: A has no gradient while B = 0
    assert lora and any(p.grad is not None and p.grad.abs().sum() > 0 for p in lora)  # the deltas train
    model.eval()  # without dropout: the same step, the same masking, the same loss
    assert term(model, 3).item() == pytest.approx(term(model, 3).item())
    # the plain tiny checkpoint has no head: embedding distillation, as for sentence-transformers models
    inputs = _inputs(tiny_model, tiny_data)
    model = build_model(inputs, strategy, cfg, 0)
    assert mitigation.forgetting_terms(inputs, strategy, model, cfg, 0)[1]["replay"]["objective"] == (
        "embedding-distillation"
    )


# -- bad input ----------------------------------------------------------------------------------------


def test_bad_ewc_and_replay_settings_are_one_line_each(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    blank = tmp_path / "blank.txt"
    blank.write_text("\n  \n")
    cases = [
        (dict(ewc=-1.0), "--ewc must be >= 0"),
        (dict(replay_ratio=0.0), r"--replay-ratio must be in \(0, 4\]"),
        (dict(replay_ratio=4.5), r"--replay-ratio must be in \(0, 4\]"),
        (dict(reference=str(tmp_path / "none.txt")), "none.txt: no such file; give a text file"),
        (dict(replay=str(tmp_path / "none.txt")), "--replay .*none.txt: no such file; give a text file"),
        (dict(replay=str(empty)), "--replay .*empty.txt: the file is empty"),
    ]
    for kwargs, words in cases:
        with pytest.raises(TunebenchError, match=words) as err:
            TrainConfig(**kwargs)
        assert "\n" not in str(err.value)
    with pytest.raises(TunebenchError, match="--opt full.ewc=-2: must be >= 0"):
        resolve_strategy("full", {"ewc": "-2"}, {}, 64)
    with pytest.raises(TunebenchError, match=r"--opt full.replay_ratio=9: must be in \(0, 4\]"):
        resolve_strategy("full", {"replay_ratio": "9", "replay": str(blank)}, {}, 64)
    with pytest.raises(TunebenchError, match="--replay .*blank.txt: no texts in the file"):
        read_corpus(str(blank), None, "--replay")


def test_scratch_refuses_ewc_and_replay_in_one_line(tiny_model, tiny_data, tmp_path, capsys):
    with pytest.raises(TunebenchError, match=r"--ewc \(scratch\): scratch starts from random weights"):
        resolve_strategy("scratch", {}, {"ewc": 1.0}, 64)
    argv = ["compare", "--data", tiny_data["train"], "--model", tiny_model, "--out", str(tmp_path)]
    assert main([*argv, "--strategies", "scratch", "--replay", tiny_data["dev"]]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        "--replay (scratch)" in err and "no pre-trained weights to keep" in err and len(err.splitlines()) == 1
    )


def test_a_corpus_table_gives_the_datas_text_column_or_its_only_text_column(tmp_path):
    named = write_tsv(tmp_path / "named.tsv", make_rows(5, 1))  # sentence, label: the data's name
    assert read_corpus(str(named), "sentence", "--reference") == [t for t, _ in make_rows(5, 1)]
    only = tmp_path / "only.csv"
    only.write_text("id,body\n1,a news text\n2,another one\n")
    assert read_corpus(str(only), "sentence", "--reference") == ["a news text", "another one"]
    two = tmp_path / "two.csv"
    two.write_text("a,b\nx y,z w\n")
    with pytest.raises(TunebenchError, match="--replay .*two.csv: which column holds the text"):
        read_corpus(str(two), "sentence", "--replay")
    lines = tmp_path / "lines.txt"
    lines.write_text("one text\twith a tab\n\nsecond text\n")
    assert read_corpus(str(lines), None, "--replay") == ["one text\twith a tab", "second text"]


def test_the_multitask_body_takes_ewc_and_replay(tmp_path, caplog):
    """compare --tasks: the shared body is held like a single-task one (EWC's default reference: the
    first task's training inputs)."""
    corpus = tmp_path / "original.txt"
    corpus.write_text("\n".join(t for t, _ in make_rows(32, 5)) + "\n")
    entries = []
    for task, name in (("text-classification", "reviews"), ("text-regression", "similarity")):
        data = tiny_of(task).data
        columns = {
            k: getattr(data, k) for k in ("text_col", "label_col", "text_pair_col") if getattr(data, k)
        }
        entries.append(
            {"data": data.data, "dev": data.dev, "test": data.test, "task": task, "name": name, **columns}
        )
    train = {"epochs": 1, "batch_size": 16, "ewc": 1.0, "replay": str(corpus)}
    caplog.set_level(logging.INFO, logger="tunebench")
    rows = tunebench.compare_tasks(
        entries,
        model=tiny_of("text-classification").model,
        strategies=["multitask"],
        out=tmp_path / "out",
        train=train,
        show=False,
    )
    assert rows[0]["status"] == "ok"
    said = caplog.text
    assert "EWC λ=1: " in said and "replay: 32 texts of original.txt" in said
