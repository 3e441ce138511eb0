"""Domain-adaptive pre-training (`tunebench adapt`, `compare --dapt-corpus`) on the tiny BERT: the
masking and noise rules, the held-out loss falling, the folder loading like any model, determinism,
reuse, the objective `auto` picks, each bad input's one line, and the side-by-side comparison."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoTokenizer, BertForMaskedLM

from tunebench.adapt import adapt, read_corpus
from tunebench.backbones import load_backbone
from tunebench.backbones.mlm import WholeWordMasking
from tunebench.backbones.pretraining import Chunk, chunk_corpus
from tunebench.backbones.tsdae import DeleteWords, load_decoder
from tunebench.cli import main
from tunebench.errors import TunebenchError

FAST = {"steps": 60, "lr": 2e-3, "batch_size": 16}


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, tiny_data) -> Path:
    """Unlabelled text: the tiny training file's sentences, one per line."""
    lines = Path(tiny_data["train"]).read_text().splitlines()[1:]
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(line.split("\t")[0] for line in lines) * 3 + "\n")
    return path


def test_whole_word_masking_masks_every_piece_of_a_chosen_word(tiny_model):
    tok = AutoTokenizer.from_pretrained(tiny_model)
    # one word of three pieces (ids 10, 11, 12) beside three words of one piece each, in [CLS] ... [SEP]
    chunk = Chunk([2, 10, 11, 12, 20, 21, 22, 3], [-1, 0, 0, 0, 1, 2, 3, -1])
    make = WholeWordMasking(tok, probability=0.25)  # one of the four words
    for seed in range(40):
        batch = make([chunk], np.random.default_rng(seed))
        chosen = batch["labels"][0] != -100
        assert chosen.tolist() == batch["target_mask"][0].tolist()
        assert not chosen[0] and not chosen[-1]  # special tokens are never predicted
        if chosen[1:4].any():
            assert chosen[1:4].all() and chosen.sum() == 3  # the whole word, and only it
        else:
            assert chosen.sum() == 1
        assert batch["labels"][0][chosen].tolist() == torch.tensor(chunk.ids)[chosen].tolist()
    a = make([chunk], np.random.default_rng(3))
    b = make([chunk], np.random.default_rng(3))
    assert all(torch.equal(a[k], b[k]) for k in a)  # the same seed, the same masking


def test_chunks_split_long_documents_and_keep_special_tokens(tiny_model):
    tok = AutoTokenizer.from_pretrained(tiny_model)
    text = " ".join(["good film"] * 20)  # 40 words
    chunks = chunk_corpus(tok, [text, "bad"], max_length=16, split_long=True)
    assert [len(c.ids) for c in chunks] == [16, 16, 14, 3]  # 40 tokens in pieces of 14, plus [CLS]/[SEP]
    assert all(c.ids[0] == tok.cls_token_id and c.ids[-1] == tok.sep_token_id for c in chunks)
    assert chunks[1].words[1] == 14  # word ids stay those of the document
    assert len(chunk_corpus(tok, [text], max_length=16, split_long=False)) == 1  # a sentence objective cuts


def test_tsdae_noise_keeps_specials_and_the_decoder_reads_the_whole_text(tiny_model):
    tok = AutoTokenizer.from_pretrained(tiny_model)
    chunk = Chunk([2, *range(10, 30), 3], [-1, *range(20), -1])
    batch = DeleteWords(tok)([chunk], np.random.default_rng(0))
    kept = batch["input_ids"][0][batch["attention_mask"][0] == 1]
    assert kept[0] == 2 and kept[-1] == 3 and 2 + 1 <= len(kept) < 22
    assert batch["decoder_input_ids"][0].tolist() == chunk.ids
    assert batch["labels"][0][:-1].tolist() == chunk.ids[1:]  # position t predicts token t + 1


def test_tsdae_decoder_shares_the_encoder_weights(tiny_model):
    encoder = load_backbone(tiny_model).model
    decoder = load_decoder(tiny_model, encoder)
    shared = dict(encoder.named_parameters())
    for name, p in decoder.base_model.named_parameters():
        if "crossattention" in name:
            assert name not in shared
        elif name in shared:
            assert p is shared[name]
    assert decoder.base_model.embeddings.word_embeddings.weight is encoder.embeddings.word_embeddings.weight


@pytest.mark.parametrize("objective", ["mlm", "tsdae"])
def test_adapt_lowers_held_out_loss_and_loads_as_a_model(objective, tiny_model, corpus, tmp_path):
    record = adapt(corpus, tiny_model, tmp_path / "a", objective=objective, **FAST)
    assert record["objective"] == objective
    assert record["held_out_after"]["loss"] < record["held_out_before"]["loss"] - 0.1
    assert record["steps"] == FAST["steps"] and record["seconds"] > 0
    assert json.loads((tmp_path / "a" / "adapt.json").read_text())["key"] == record["key"]
    backbone = load_backbone(str(tmp_path / "a"))
    assert backbone.newly_initialized == []
    original = load_backbone(tiny_model).model.state_dict()
    adapted = backbone.model.state_dict()
    assert set(adapted) == set(original)
    changed = [n for n in original if not torch.equal(original[n], adapted[n])]
    assert changed  # the encoder trained
    keys = set(load_file(str(tmp_path / "a" / "model.safetensors")))
    assert any(k.startswith("cls.") for k in keys) == (objective == "mlm")  # MLM keeps its head


def test_adapt_is_deterministic_and_reuses_a_finished_folder(tiny_model, corpus, tmp_path):
    first = adapt(corpus, tiny_model, tmp_path / "a", objective="mlm", **FAST)
    second = adapt(corpus, tiny_model, tmp_path / "b", objective="mlm", **FAST)
    a, b = (
        load_file(str(tmp_path / "a" / "model.safetensors")),
        load_file(str(tmp_path / "b" / "model.safetensors")),
    )
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert first["held_out_after"] == second["held_out_after"]
    stamp = (tmp_path / "a" / "model.safetensors").stat().st_mtime_ns
    again = adapt(corpus, tiny_model, tmp_path / "a", objective="mlm", **FAST)
    assert again["key"] == first["key"] and (tmp_path / "a" / "model.safetensors").stat().st_mtime_ns == stamp
    with pytest.raises(TunebenchError, match="not empty and not this adaptation"):
        adapt(corpus, tiny_model, tmp_path / "a", objective="tsdae", **FAST)


def test_auto_objective_follows_the_checkpoint(tiny_model, corpus, tmp_path):
    plain = adapt(corpus, tiny_model, tmp_path / "plain", steps=10)
    assert plain["objective"] == "mlm" and plain["new_head"]  # a new head, reported
    embedding = tmp_path / "embedding-model"
    shutil.copytree(tiny_model, embedding)
    (embedding / "modules.json").write_text("[]")  # a sentence-transformers folder
    assert adapt(corpus, str(embedding), tmp_path / "emb", steps=10)["objective"] == "tsdae"
    with_head = tmp_path / "mlm-model"
    BertForMaskedLM.from_pretrained(tiny_model).save_pretrained(with_head)
    for f in Path(tiny_model).glob("*"):
        if f.name.startswith(("tokenizer", "vocab")):
            shutil.copy(f, with_head / f.name)
    own = adapt(corpus, str(with_head), tmp_path / "own", steps=10)
    assert own["objective"] == "mlm" and own["new_head"] == []


def test_bad_adaptation_inputs_get_one_line(tiny_model, corpus, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    cases = [
        ({"corpus": tmp_path / "missing.txt"}, "no such file"),
        ({"corpus": empty}, "no texts in the file"),
        ({"corpus": corpus, "steps": 5, "epochs": 1}, "not both"),
        ({"corpus": corpus, "objective": "bart"}, "choose auto, mlm, tsdae"),
        ({"corpus": corpus, "steps": 0}, "must be >= 1"),
    ]
    for kwargs, message in cases:
        with pytest.raises(TunebenchError, match=message):
            adapt(model=tiny_model, out=tmp_path / "x", **kwargs)
    table = tmp_path / "corpus.csv"
    table.write_text("review,stars\ngood film,5\nbad film,1\n")
    assert read_corpus(table, "review") == ["good film", "bad film"]


def test_compare_dapt_corpus_runs_the_ladder_on_both_backbones(tiny_model, tiny_data, corpus, tmp_path):
    dev_line = Path(tiny_data["dev"]).read_text().splitlines()[1].split("\t")[0]
    mixed = tmp_path / "mixed.txt"
    mixed.write_text(corpus.read_text() + dev_line + "\n")  # a dev text never reaches adaptation
    out = tmp_path / "out"
    code = main(
        ["compare", "--data", tiny_data["train"], "--dev", tiny_data["dev"], "--test", tiny_data["test"],
         "--model", tiny_model, "--strategies", "features", "head", "--epochs", "2", "--out", str(out),
         "--dapt-corpus", str(mixed), "--dapt-steps", "20", "--dapt-lr", "2e-3", "-q"]
    )  # fmt: skip
    assert code == 0
    result = json.loads((out / "dapt.json").read_text())
    texts = [t for t in read_corpus(mixed) if t != dev_line]
    record = result["adapt"]
    assert record["corpus"]["texts"] + record["corpus"]["held_out"] == len(texts)
    assert [r["strategy"] for r in result["rows"]] and all(
        r["adapted"]["status"] == "ok" for r in result["rows"]
    )
    for r in result["rows"]:
        assert r["adapted"]["total_s"] == pytest.approx(r["adapted"]["time_s"] + record["seconds"])
    table = (out / "dapt.md").read_text()
    assert "| head |" in table and "| features |" in table and "adapted test" in table
    models = {
        json.loads(p.read_text())["backbone"] for p in (out / "adapted" / "runs").glob("*/manifest.json")
    }
    assert models == {str(out / "backbone")}
    # the adapted comparison exports and predicts like any other (its finished runs are reused)
    export, preds = tmp_path / "export", tmp_path / "preds.csv"
    assert main(
        ["compare", "--data", tiny_data["train"], "--dev", tiny_data["dev"], "--test", tiny_data["test"],
         "--model", str(out / "backbone"), "--strategies", "features", "head", "--epochs", "2",
         "--out", str(out / "adapted"), "--export", str(export), "-q"]
    ) == 0  # fmt: skip
    assert (
        main(["predict", "--model", str(export), "--data", tiny_data["test"], "--out", str(preds), "-q"]) == 0
    )
    assert len(preds.read_text().splitlines()) == 1 + 48
