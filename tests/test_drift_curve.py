"""Representation drift (linear CKA), the forgetting check and learning curves, on the tiny model."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tunebench
from tunebench import runner
from tunebench.analysis import curve, drift
from tunebench.cli import main
from tunebench.data import DataConfig
from tunebench.errors import TunebenchError
from tunebench.report.html import _series, write_html
from tunebench.store import RunStore

FAST = {"epochs": 1, "batch_size": 16}
# full at a high rate so the tiny model visibly moves; last-k with k=1 leaves embeddings + layer 1 frozen
OPTIONS = {"full": {"lr": "1e-3"}, "last-k": {"k": "1", "lr": "1e-3"}}
DRIFT_LADDER = ["features", "head", "full", "last-k", "lora"]


def data_config(tiny_data, **kw) -> DataConfig:
    return DataConfig(data=tiny_data["train"], dev=tiny_data["dev"], test=tiny_data["test"], **kw)


def no_training(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("a run was trained although it is stored")

    monkeypatch.setattr(runner, "run_one", fail)


@pytest.fixture(scope="module")
def drifted(tiny_model, tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("drift")
    tunebench.compare(
        data_config(tiny_data),
        model=tiny_model,
        strategies=DRIFT_LADDER,
        out=out,
        train=FAST,
        options=OPTIONS,
        show=False,
        drift=True,
    )
    return out, {r["strategy"]: r for r in RunStore(out).all()}


# ----------------------------------------------------------------------------- linear CKA


def test_linear_cka_invariances_and_both_forms():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 8))
    Q, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert drift.linear_cka(X, X) == pytest.approx(1.0, abs=1e-12)
    assert drift.linear_cka(X, 3.0 * X @ Q + 5.0) == pytest.approx(1.0, abs=1e-9)  # rotation, scale, shift
    assert drift.linear_cka(X, rng.normal(size=(60, 8))) < 0.5
    Y = X @ rng.normal(size=(8, 100))  # more features than inputs: the Gram form
    by_gram = drift.linear_cka(X, Y)
    by_features = drift.linear_cka(np.repeat(X, 2, 0), np.repeat(Y, 2, 0))  # same CKA, feature form
    assert by_gram == pytest.approx(by_features, abs=1e-9) and 0 < by_gram < 1
    assert drift.linear_cka(X, np.ones((60, 4))) is None
    assert drift.layer_names(3) == ["embeddings", "layer 1", "layer 2"]
    assert drift.drift_subset(400) is None and len(drift.drift_subset(900)) == drift.MAX_INPUTS


# ----------------------------------------------------------------------------- drift in compare


def test_drift_recorded_for_fine_tuning_runs_only(drifted):
    _, runs = drifted
    assert all(r["status"] == "ok" for r in runs.values())
    assert "drift" not in runs["features"] and "drift" not in runs["head"]
    for name in ("full", "last-k", "lora"):
        d = runs[name]["drift"]
        assert d["layers"] == ["embeddings", "layer 1", "layer 2"] and len(d["cka"]) == 3
        assert d["inputs"] == 48 and d["representation"] == "mean-pooled"
        assert all(0 < c <= 1 + 1e-9 for c in d["cka"]), (name, d["cka"])


def test_full_fine_tuning_moves_some_layer(drifted):
    _, runs = drifted
    assert min(runs["full"]["drift"]["cka"]) < 0.999


def test_frozen_layers_have_cka_one(drifted):
    _, runs = drifted
    last_k = runs["last-k"]["drift"]["cka"]
    assert last_k[0] == pytest.approx(1.0, abs=1e-6) and last_k[1] == pytest.approx(1.0, abs=1e-6)
    assert last_k[2] < 1 - 1e-6  # the one trained block did move
    # LoRA on all linear layers leaves the embedding table alone, so the peft path must see CKA 1 there
    lora = runs["lora"]["drift"]["cka"]
    assert lora[0] == pytest.approx(1.0, abs=1e-6) and lora[2] < 1 - 1e-6


def test_drift_is_not_part_of_the_key_and_fills_in_stored_runs(
    drifted, tiny_model, tiny_data, tmp_path, monkeypatch
):
    _, runs = drifted
    kw = dict(model=tiny_model, strategies=["last-k"], out=tmp_path, train=FAST, options=OPTIONS, show=False)
    tunebench.compare(data_config(tiny_data), **kw)
    (stored,) = RunStore(tmp_path).all()
    assert stored["key"] == runs["last-k"]["key"] and "drift" not in stored
    no_training(monkeypatch)
    tunebench.compare(data_config(tiny_data), drift=True, **kw)  # measured on the saved artifact
    (stored,) = RunStore(tmp_path).all()
    assert stored["drift"]["cka"] == pytest.approx(runs["last-k"]["drift"]["cka"], abs=1e-5)


def test_report_shows_drift_per_layer(drifted):
    out, _ = drifted
    html = write_html(out).read_text()
    section = html.split("id='drift'")[1].split("</section>")[0]
    assert "<svg" in section and "layer 2" in section and "1 − linear CKA" in section
    assert ">inputs<" not in section  # the input count is not a heatmap column


# ----------------------------------------------------------------------------- forgetting


def test_forgetting_compares_original_and_fine_tuned(drifted, tiny_data, tmp_path):
    out, runs = drifted
    result = drift.forgetting(
        out / "runs" / runs["full"]["key"], data_config(tiny_data), out=tmp_path, show=False
    )
    assert result["metric"] == "accuracy" and result["split"] == "test"
    orig, tuned = result["original"], result["fine_tuned"]
    assert 0 <= orig["test"] <= 1 and 0 <= tuned["test"] <= 1 and "C" in orig
    assert result["difference_points"] == pytest.approx(100 * (tuned["test"] - orig["test"]), abs=0.01)
    # the original side is exactly the features strategy (mean pooling, last layer, C on dev, seed 0)
    assert orig["test"] == pytest.approx(runs["features"]["test_metrics"]["accuracy"])
    drift.forgetting(out / "runs" / runs["full"]["key"], data_config(tiny_data), out=tmp_path, show=False)
    assert len(json.loads((tmp_path / "forgetting.json").read_text())) == 1  # a rerun replaces its entry


def test_forgetting_through_peft_and_refusing_frozen_runs(drifted, tiny_data):
    out, runs = drifted
    result = drift.forgetting(out / "runs" / runs["lora"]["key"], data_config(tiny_data), show=False)
    assert result["strategy"] == "lora" and 0 <= result["fine_tuned"]["test"] <= 1
    with pytest.raises(TunebenchError, match="leaves the backbone unchanged"):
        drift.forgetting(out / "runs" / runs["head"]["key"], data_config(tiny_data), show=False)


def write_sts(folder, n: int = 30, bad: bool = False):
    from conftest import FILLER, NEGATIVE, POSITIVE

    rng = np.random.default_rng(0)
    words = POSITIVE + NEGATIVE + FILLER
    lines = []
    for i in range(n):
        a = " ".join(rng.choice(words, 4))
        b = " ".join(rng.choice(words, 4))
        lines.append(f"main-captions\tMSRvid\t2012test\t{i:04d}\t{rng.uniform(0, 5):.3f}\t{a}\t{b}")
    if bad:
        lines.append("only\ttwo")
    (folder / "stsb").mkdir(parents=True, exist_ok=True)
    (folder / "stsb" / "sts-test.csv").write_text("\n".join(lines) + "\n")
    return folder


def test_forgetting_on_stsb(drifted, tmp_path):
    out, runs = drifted
    run_dir = out / "runs" / runs["full"]["key"]
    result = drift.forgetting(run_dir, DataConfig(data="stsb", data_dir=str(write_sts(tmp_path))), show=False)
    assert result["metric"] == "spearman" and result["sizes"] == {"test": 30}
    assert -1 <= result["original"]["test"] <= 1 and -1 <= result["fine_tuned"]["test"] <= 1
    write_sts(tmp_path, bad=True)
    with pytest.raises(TunebenchError, match="line 31: expected 7"):
        drift.forgetting(run_dir, DataConfig(data="stsb", data_dir=str(tmp_path)), show=False)


def test_forgetting_cli(drifted, tiny_data, capsys):
    out, runs = drifted
    run_dir = str(out / "runs" / runs["last-k"]["key"])
    args = ["forgetting", "--run", run_dir, "--data", tiny_data["train"], "--dev", tiny_data["dev"]]
    assert main(["-q", *args]) == 0
    assert "points of dev accuracy" in capsys.readouterr().out  # no --test: scored on dev
    assert main(["-q", "forgetting", "--run", str(out / "runs" / runs["features"]["key"]), *args[3:]]) == 2


# ----------------------------------------------------------------------------- learning curve


@pytest.fixture(scope="module")
def curved(tiny_model, tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("curve")
    kw = dict(model=tiny_model, train=FAST, options={"bitfit": {"lr": "1e-2"}}, show=False)
    result = curve.learning_curve(
        data_config(tiny_data), ["features", "bitfit"], [40, 500], [0, 1], out, **kw
    )
    return out, result, kw


def test_curve_json_shape_and_caps(curved):
    out, result, _ = curved
    assert result["sizes"] == [40, 96] and result["requested_sizes"] == [40, 500]
    assert result["available_train"] == 96 and "capped at 96" in result["notes"][0]
    assert sorted((p["strategy"], p["train_size"]) for p in result["points"]) == [
        ("bitfit", 40),
        ("bitfit", 96),
        ("features", 40),
        ("features", 96),
    ]
    for p in result["points"]:
        assert p["seeds"] == 2 and p["status"] == "ok" and 0 <= p["dev_mean"] <= 1 and p["dev_std"] >= 0
    assert result["crossover"]["split"] == "test" and result["crossover"]["frozen"] == "features"
    assert json.loads((out / "curve.json").read_text()) == json.loads(json.dumps(result))
    assert (out / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    series = {s["name"]: s for s in _series(result, "curve", "accuracy", "curve")}  # what the report reads
    assert set(series) == {"features", "bitfit"} and series["bitfit"]["xs"] == [40.0, 96.0]
    assert series["bitfit"]["ys"][0] == next(
        p["dev_mean"] for p in result["points"] if p["strategy"] == "bitfit" and p["train_size"] == 40
    )


def test_curve_sizes_are_separate_runs(curved):
    out, _, _ = curved
    records = RunStore(out).all()
    assert len(records) == 8 and len({r["key"] for r in records}) == 8
    by_size = {}
    for r in records:
        by_size.setdefault(r["sizes"]["train"], set()).add(r["data_fingerprint"])
    assert sorted(by_size) == [40, 96] and all(len(f) == 1 for f in by_size.values())
    assert by_size[40] != by_size[96]


def test_curve_resumes_without_training(curved, tiny_data, monkeypatch):
    out, result, kw = curved
    no_training(monkeypatch)
    again = curve.learning_curve(data_config(tiny_data), ["features", "bitfit"], [40, 500], [0, 1], out, **kw)
    assert again["points"] == result["points"]
    data = ["--data", tiny_data["train"], "--dev", tiny_data["dev"], "--test", tiny_data["test"]]
    flags = "--strategies features bitfit --sizes 40 500 --seeds 0 1 --epochs 1 --batch-size 16"
    argv = ["-q", "curve", *data, "--model", kw["model"], "--out", str(out), *flags.split()]
    argv += ["--opt", "bitfit.lr=1e-2"]
    assert main(argv) == 0
    assert json.loads((out / "curve.json").read_text())["points"] == result["points"]


def test_curve_bad_input(tiny_data, tmp_path):
    with pytest.raises(TunebenchError, match="--sizes"):
        curve.learning_curve(data_config(tiny_data), ["features"], [0], [0], tmp_path)
    with pytest.raises(TunebenchError, match="not --train-size"):
        curve.learning_curve(data_config(tiny_data, train_size=40), ["features"], [40], [0], tmp_path)


def pts(table: dict[str, list[float | None]], sizes=(100, 300, 1000, 3000)) -> list[dict]:
    return [
        {"strategy": name, "train_size": s, "test_mean": v}
        for name, values in table.items()
        for s, v in zip(sizes, values)
    ]


def test_crossover_needs_fine_tuning_ahead_from_there_on():
    points = pts(
        {
            "features": [0.80, 0.82, 0.84, 0.85],
            "full": [0.70, 0.83, 0.80, 0.90],  # a lucky lead at 300 that does not last
            "lora": [0.60, 0.70, 0.83, None],  # failed at 3000: skipped
        }
    )
    c = curve.crossover(points, "test")
    assert c["size"] == 3000 and c["frozen"] == "features"
    assert [m["margin_points"] for m in c["margins"]] == [-10.0, 1.0, -1.0, 5.0]
    assert [m["best"] for m in c["margins"]] == ["full", "full", "lora", "full"]
    assert "overtakes features at 3000" in c["text"]


def test_crossover_never_always_and_head_fallback():
    never = curve.crossover(pts({"features": [0.8, 0.85, 0.9, 0.9], "full": [0.7, 0.8, 0.9, 0.89]}), "test")
    assert never["size"] is None and "not within the sizes tried" in never["text"]
    always = curve.crossover(pts({"head": [0.6, 0.7, 0.75, 0.8], "lora": [0.65, 0.75, 0.8, 0.9]}), "test")
    assert (
        always["frozen"] == "head" and always["size"] == 100 and "already at the smallest" in always["text"]
    )
    nothing = curve.crossover(pts({"full": [0.6, 0.7, 0.8, 0.9]}), "test")
    assert nothing["size"] is None and "no frozen baseline" in nothing["text"]
