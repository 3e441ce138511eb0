"""Layer probes and domain gap on the tiny model: per-layer results, the shared feature cache, the
suggestion rule, tokenizer statistics on a known vocabulary, vocabulary overlap, MMD, verdicts, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest

import tunebench
from tunebench import extract
from tunebench.analysis import gap, probe
from tunebench.cli import main
from tunebench.data import DataConfig


def data_config(tiny_data, test: bool = True) -> DataConfig:
    return DataConfig(data=tiny_data["train"], dev=tiny_data["dev"], test=tiny_data["test"] if test else None)


def cache_files(out) -> list:
    return sorted((out / "cache" / "features").glob("*.safetensors"))


def no_forward_pass(monkeypatch) -> None:
    def fail(*args, **kwargs):
        raise AssertionError("the backbone ran although every split is cached")

    monkeypatch.setattr(extract, "all_layer_pools", fail)


@pytest.fixture(scope="module")
def probed(tiny_model, tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("probe")
    return out, probe.probe_layers(data_config(tiny_data), model=tiny_model, out=out, show=False)


# ----------------------------------------------------------------------------- probe


def test_probe_has_every_layer_and_pooling(probed):
    out, result = probed
    L = result["num_layers"]
    assert L == 2
    assert sorted((e["layer"], e["pooling"]) for e in result["layers"]) == sorted(
        (layer, p) for layer in range(L + 1) for p in ("cls", "mean")
    )
    for e in result["layers"]:
        assert set(e["dev"]) == {"accuracy", "macro_f1"} and "accuracy" in e["test"]
    assert json.loads((out / "probe.json").read_text()) == json.loads(json.dumps(result))
    assert (out / "probe.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_best_layer_is_the_argmax_and_beats_chance(probed):
    _, result = probed
    scores = [e["dev"]["accuracy"] for e in result["layers"]]
    assert result["best"]["dev"]["accuracy"] == max(scores)
    assert result["best"] == result["layers"][int(np.argmax(scores))]
    for p, best in result["best_by_pooling"].items():
        assert best["dev"]["accuracy"] == max(
            e["dev"]["accuracy"] for e in result["layers"] if e["pooling"] == p
        )
    assert max(scores) >= result["majority"]["dev"] + 0.25  # learnable data: well above the 0.5 chance line
    assert result["suggestion"]["text"]


def test_second_probe_and_compare_reuse_the_cache(probed, tiny_model, tiny_data, monkeypatch):
    out, first = probed
    files = cache_files(out)
    assert len(files) == 3  # train, dev, test: one forward pass each, all layers and poolings
    no_forward_pass(monkeypatch)
    again = probe.probe_layers(data_config(tiny_data), model=tiny_model, out=out, show=False, plot=False)
    assert again["seconds"]["extract"] == 0.0
    assert cache_files(out) == files
    assert again["layers"] == first["layers"]
    # `compare`'s features strategy reads the same file, and the last-layer probe with the model's
    # pooling is that very run
    rows = tunebench.compare(
        data_config(tiny_data), model=tiny_model, strategies=["features"], out=out, show=False
    )
    last = next(e for e in first["layers"] if e["layer"] == 2 and e["pooling"] == first["model_pooling"])
    assert rows[0]["dev_mean"] == pytest.approx(last["dev"]["accuracy"])


@pytest.mark.parametrize(
    "curve, k, plateau, words",
    [
        ([0.6, 0.7, 0.8, 0.9, 0.92], 2, 4, "improve up to the last layer"),
        ([0.6, 0.85, 0.93, 0.8, 0.78], 2, 2, "peak at layer 2 of 4 (dev accuracy 0.930) and fall to 0.780"),
        ([0.6, 0.93, 0.8, 0.8, 0.78], 3, 1, "most of the model"),
        ([0.6, 0.8, 0.85, 0.91, 0.905], 1, 3, "stay within dev noise"),
        ([0.6, 0.8, 0.905, 0.91, 0.912], 2, 2, "reach dev accuracy 0.905 at layer 2 of 4"),
        ([0.5, 0.51, 0.5, 0.52, 0.5], None, 1, "fine-tune the whole model"),
    ],
)
def test_suggestion_rule(curve, k, plateau, words):
    # n_dev 800: one dev standard error is about 0.01 at 0.9
    assert probe.suggest(curve, majority=0.5, n_dev=800)[:2] == (k, plateau)
    assert words in probe.suggest(curve, majority=0.5, n_dev=800)[2]


# ----------------------------------------------------------------------------- tokenizer statistics

VOCAB = "[PAD] [UNK] [CLS] [SEP] [MASK] un ##break ##able film ##s good don ' t , !".split()


@pytest.mark.parametrize("fast", [True, False])
def test_tokenizer_stats_by_hand(tmp_path, fast):
    from transformers import BertTokenizer, BertTokenizerFast

    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    tok = (BertTokenizerFast if fast else BertTokenizer)(str(tmp_path / "vocab.txt"), do_lower_case=True)
    texts = ["Unbreakable films, good!", "good qqq don't"]
    # words: unbreakable = un ##break ##able (3), films = film ##s (2), good (1) | good (1),
    #        qqq = [UNK] (1), don't = don ' t (2: the apostrophe is not a piece of the word)
    # tokens: 8 in the first text ("," and "!" included), 5 in the second, 1 of them [UNK]
    stats = gap.tokenizer_stats(tok, texts, max_length=8)
    assert (stats["words"], stats["tokens"]) == (6, 13)
    assert stats["fertility"] == pytest.approx(10 / 6)
    assert stats["split_3plus"] == pytest.approx(1 / 6)
    assert stats["unk_rate"] == pytest.approx(1 / 13)
    assert stats["truncated_share"] == pytest.approx(1 / 2)  # 8 + [CLS] [SEP] > 8; 5 + 2 fits


def test_word_spans_strip_edge_punctuation():
    text = '"(great)." -- coming-of-age/films'
    assert [text[a:b] for a, b in gap.word_spans(text)] == ["great", "coming", "of", "age", "films"]


# ----------------------------------------------------------------------------- vocabulary and MMD


def test_unigrams_drop_stopwords_and_markup():
    assert gap.unigrams("The <br />Film's GREAT, and it is a 10") == ["film's", "great"]


def test_vocab_overlap_identical_and_disjoint():
    a = [gap.unigrams("great acting superb plot lovely score")] * 3
    b = [gap.unigrams("protein binding kinase assay mutant cells")]
    assert gap.vocab_overlap(a, a) == (1.0, 6)
    assert gap.vocab_overlap(a, b) == (0.0, 6)


def test_mmd_zero_on_itself_and_above_baseline_when_shifted():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(150, 8))
    assert gap.mmd2(X, X, gap.median_sigma2(X)) == pytest.approx(0.0, abs=1e-12)
    ref_a, ref_b = rng.normal(size=(150, 8)), rng.normal(size=(150, 8))
    same = gap.embedding_gap(rng.normal(size=(150, 8)), ref_a, ref_b)
    shifted = gap.embedding_gap(rng.normal(size=(150, 8)) + 1.0, ref_a, ref_b)
    assert same["ratio"] < gap.MMD_NOISE_RATIO
    assert shifted["mmd2"] > shifted["baseline"] and shifted["ratio"] > 10
    assert shifted["excess"] > gap.THRESHOLDS["mmd_excess"][1]


# ----------------------------------------------------------------------------- verdict


@pytest.mark.parametrize(
    "signal, value, expected",
    [
        ("fertility", 1.29, "small"),
        ("fertility", 1.3, "medium"),
        ("fertility", 1.6, "large"),
        ("split_3plus", 0.049, "small"),
        ("split_3plus", 0.12, "large"),
        ("unk_rate", 0.01, "medium"),
        ("vocab_overlap_relative", 0.9, "small"),
        ("vocab_overlap_relative", 0.65, "medium"),
        ("vocab_overlap_relative", 0.4, "large"),
        ("mmd_excess", 0.02, "small"),
        ("mmd_excess", 0.05, "medium"),
        ("mmd_excess", 0.2, "large"),
    ],
)
def test_levels(signal, value, expected):
    assert gap.level(signal, value) == expected


def test_verdict_is_the_largest_level():
    signals = [
        {"name": "a", "level": "small"},
        {"name": "b", "level": "medium"},
        {"name": "c", "level": "medium"},
    ]
    assert gap.verdict(signals) == ("medium", ["b", "c"])
    assert gap.verdict(signals + [{"name": "d", "level": "large"}]) == ("large", ["d"])


def test_gap_against_an_unrelated_reference_is_large(tiny_model, tiny_data, tmp_path):
    from conftest import write_tsv

    rng = np.random.default_rng(0)
    words = ["kinase", "protein", "assay", "mutant", "binding", "cells", "enzyme", "ligand"]
    ref = write_tsv(tmp_path / "bio.tsv", [(" ".join(rng.choice(words, 6)), "x") for _ in range(60)])
    result = gap.domain_gap(
        data_config(tiny_data, test=False), str(ref), model=tiny_model, out=tmp_path, show=False
    )
    assert result["vocabulary"]["overlap"] == 0.0
    assert result["embedding"]["ratio"] > gap.MMD_NOISE_RATIO
    assert result["verdict"] == "large" and "vocab_overlap_relative" in result["verdict_by"]
    assert result["frozen_probe"]["dev_accuracy"] > result["frozen_probe"]["majority"]
    assert json.loads((tmp_path / "gap.json").read_text())["verdict"] == "large"


# ----------------------------------------------------------------------------- CLI


def test_cli_probe_and_gap(tiny_model, tiny_data, tmp_path, capsys):
    out = tmp_path
    common = ["--data", tiny_data["train"], "--dev", tiny_data["dev"], "--model", tiny_model]
    common += ["--out", str(out)]
    assert main(["-q", "probe", *common]) == 0  # no test split: dev only
    result = json.loads((out / "probe.json").read_text())
    assert "test" not in result["majority"] and "test" not in result["layers"][0]
    assert main(["gap", *common, "--reference", tiny_data["test"]]) == 0
    result = json.loads((out / "gap.json").read_text())
    assert result["verdict"] in gap.LEVELS and result["reference"]["texts"] == 48
    assert "verdict:" in capsys.readouterr().out


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--reference", "no/such/corpus.csv"], "--reference no/such/corpus.csv: no such file"),
        (["--reference", "{test}", "--reference-text-col", "body"], "no column 'body'"),
    ],
)
def test_cli_gap_bad_reference_is_one_line(tiny_model, tiny_data, tmp_path, capsys, extra, message):
    extra = [x.format(**tiny_data) for x in extra]
    args = ["gap", "--data", tiny_data["train"], "--model", tiny_model, "--out", str(tmp_path), *extra]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err
