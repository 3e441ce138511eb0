"""Sentence pairs: regression metrics, the STS-B reader, the bi-encoder family, and long-text chunks.

Every strategy that applies to pair regression is enrolled from the registry and must finish,
round-trip through export -> predict, and report Pearson/Spearman."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ladder, tiny_of
from safetensors.numpy import load_file

import tunebench
from tunebench.cli import main
from tunebench.data import DataConfig, load_text_regression
from tunebench.data.text import Texts, read_texts
from tunebench.errors import TunebenchError
from tunebench.prediction import Predictor
from tunebench.store import RunStore
from tunebench.tasks import get_task
from tunebench.tasks.base import pool_groups
from tunebench.tasks.text_regression import pearson, ranks, spearman

REGRESSION = get_task("text-regression")


@pytest.fixture(scope="module")
def pair_data():
    return tiny_of("text-regression").data


# -- metrics -------------------------------------------------------------------------------------


def test_ranks_share_ties_and_spearman_matches_hand_values():
    assert ranks([10, 20, 20, 5]).tolist() == [2.0, 3.5, 3.5, 1.0]  # the two 20s share ranks 3 and 4
    # ranks x = 1,2,3,4 and y = 1,3,2,4: d^2 = 0+1+1+0 = 2, rho = 1 - 6*2/(4*15) = 0.8
    assert spearman([1, 2, 3, 4], [10, 30, 20, 40]) == pytest.approx(0.8)
    assert pearson([1, 2, 3], [2, 4, 6]) == pytest.approx(1.0)
    assert pearson([1, 1, 1], [1, 2, 3]) == 0.0  # constant prediction: defined as 0, not NaN


def test_spearman_agrees_with_scipy_on_tied_data():
    from scipy.stats import pearsonr, spearmanr

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 5, 50), rng.normal(size=50)
    assert spearman(x, y) == pytest.approx(spearmanr(x, y).statistic)
    assert pearson(x, y) == pytest.approx(pearsonr(x, y).statistic)


def test_regression_metrics_are_times_100():
    m = REGRESSION.metrics(np.array([[1.0], [2.0], [3.0]]), np.array([1.0, 2.0, 3.0]), ["score"])
    assert m["spearman"] == pytest.approx(100.0) and m["pearson"] == pytest.approx(100.0) and m["mse"] == 0


def test_pool_groups_averages_rows_of_one_example():
    out = np.array([[1.0, 0.0], [3.0, 2.0], [5.0, 5.0]])
    assert pool_groups(out, np.array([0, 0, 1])).tolist() == [[2.0, 1.0], [5.0, 5.0]]


# -- data ----------------------------------------------------------------------------------------


def test_regression_target_must_be_a_number(tmp_path):
    p = tmp_path / "x.csv"
    p.write_text("sentence1,sentence2,score\na b,c d,1.5\ne f,g h,high\n")
    with pytest.raises(
        TunebenchError, match=r"x.csv row 2 \(line 3\): target 'high' in column 'score' is not a number"
    ):
        load_text_regression(DataConfig(data=str(p), text_col="sentence1", text_pair_col="sentence2"))


@pytest.mark.slow
def test_stsb_named_dataset_reads_the_original_release(shared_data):
    b = load_text_regression(DataConfig(data="stsb", data_dir=str(shared_data)))
    assert (len(b.train), len(b.dev), len(b.test)) == (5749, 1500, 1379)
    assert b.train.text_pairs is not None and min(b.train.labels) == 0.0 and max(b.train.labels) == 5.0


def test_a_named_dataset_of_another_task_says_which_task(shared_data):
    from tunebench.data import load_text_classification

    with pytest.raises(TunebenchError, match="dataset 'stsb' is for text-regression.*--task text-regression"):
        load_text_classification(DataConfig(data="stsb", data_dir=str(shared_data)))


# -- strategies ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def pair_ladder():
    out, _, rows = ladder("text-regression")
    return out, rows


def test_pair_ladder_includes_the_bi_encoders_and_reports_correlations(pair_ladder):
    out, rows = pair_ladder
    assert {"cosine", "bi-encoder"} <= {r["strategy"] for r in rows}
    assert rows[0]["metric"] == "spearman"
    for r in rows:
        assert -100 <= r["dev_mean"] <= 100


def test_cosine_trains_two_numbers_and_bi_encoder_reads_four_blocks(pair_ladder, tiny_model):
    out, rows = pair_ladder
    records = {r["strategy"]: r for r in RunStore(out).all()}
    assert records["cosine"]["trainable_params"] == 2  # slope and offset
    hidden = 32
    assert records["bi-encoder"]["trainable_params"] == 4 * hidden + 1  # ridge on [u, v, |u-v|, u*v]


def test_learnable_pairs_are_learned_by_the_bi_encoder(pair_ladder):
    _, rows = pair_ladder
    by = {r["strategy"]: r for r in rows}
    assert by["bi-encoder"]["dev_mean"] > 50  # the score is a function of the two texts' words


def test_cross_encoder_regression_loss_falls(pair_ladder):
    out, _ = pair_ladder
    full = next(r for r in RunStore(out).all() if r["strategy"] == "full")
    losses = [h["train_loss"] for h in full["history"]]
    assert losses[-1] < losses[0], losses


def test_bi_encoder_on_single_texts_says_it_needs_pairs(tiny_model, tiny_data, tmp_path):
    data = DataConfig(data=tiny_data["train"], dev=tiny_data["dev"])
    with pytest.raises(
        TunebenchError, match="strategy 'cosine' does not apply to text-classification: needs text pairs"
    ):
        tunebench.compare(data, model=tiny_model, strategies=["cosine"], out=tmp_path, show=False)


def test_cli_predict_writes_scores(pair_ladder, pair_data, tmp_path):
    out, rows = pair_ladder
    key = next(r["best_key"] for r in rows if r["strategy"] == "cosine")
    preds = tmp_path / "p.csv"
    argv = ["-q", "predict", "--model", str(out / "runs" / key), "--data", pair_data.dev]
    argv += ["--text-col", "sentence1", "--text-pair-col", "sentence2", "--out", str(preds)]
    assert main(argv) == 0
    lines = preds.read_text().splitlines()
    assert lines[0] == "row,score" and len(lines) == 49


def test_strategies_for_a_task_say_why_not(capsys):
    assert main(["strategies", "--task", "text-classification"]) == 0
    text = capsys.readouterr().out
    assert "needs text pairs" in text


# -- long texts ----------------------------------------------------------------------------------


def test_chunking_covers_every_token_and_pools_per_text(tiny_model, tiny_data, tmp_path):
    from tunebench.backbones import load_backbone

    backbone = load_backbone(tiny_model)
    task = get_task("text-classification")
    split = Texts(["good " * 30 + "bad", "fine"])
    enc = task.encode(backbone, split, 16, long_text="chunk")
    assert enc.groups.tolist().count(1) == 1 and enc.groups.tolist().count(0) >= 3
    assert all(len(r["input_ids"]) <= 16 for r in enc.rows)
    # the last word of the long text is in its last window (truncation would have dropped it)
    bad = backbone.tokenizer.convert_tokens_to_ids("bad")
    assert bad in enc.rows[int(np.flatnonzero(enc.groups == 0)[-1])]["input_ids"]


def test_compare_with_chunks_scores_texts_not_windows(tiny_model, tiny_data, tmp_path):
    data = DataConfig(data=tiny_data["train"], dev=tiny_data["dev"], test=tiny_data["test"])
    rows = tunebench.compare(
        data,
        model=tiny_model,
        strategies=["features", "full"],
        out=tmp_path,
        max_length=8,
        long_text="chunk",
        train={"epochs": 1},
        show=False,
    )
    assert all(r["status"] == "ok" for r in rows)
    rec = RunStore(tmp_path).all()[0]
    assert rec["long_text"] == "chunk" and rec["rows"]["dev"] > rec["sizes"]["dev"] == 48
    key = next(r["best_key"] for r in rows if r["strategy"] == "full")
    texts = read_texts(tiny_data["dev"], None, None)
    stored = load_file(str(tmp_path / "runs" / key / "predictions.safetensors"))["dev"]  # per window
    per_text = Predictor(tmp_path / "runs" / key).predict_logits(texts)
    assert per_text.shape == (48, 2) and stored.shape[0] == rec["rows"]["dev"]


def test_probe_every_layer_for_regression(tiny_model, pair_data, tmp_path):
    from tunebench.analysis.probe import probe_layers

    result = probe_layers(pair_data, model=tiny_model, out=tmp_path, task="text-regression", show=False)
    assert result["metric"] == "spearman" and len(result["layers"]) == 2 * 3  # 2 poolings x 3 layers
    assert result["best"]["dev"]["spearman"] > 30 and result["suggestion"]["text"]


def test_regression_runs_are_not_flagged_as_collapsed(pair_ladder):
    from tunebench.report.diagnostics import diagnose

    out, rows = pair_ladder
    for rec in RunStore(out).all():
        codes = {w.code for w in diagnose(rec, out / "runs" / rec["key"])}
        assert "collapsed-predictions" not in codes, rec["strategy"]
