"""Token classification end to end on the tiny model: alignment of word labels to sub-tokens, decoding
back to words, every applicable strategy (enrolled from the registry) finishes and round-trips."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ladder, tiny_of
from safetensors.numpy import load_file

import tunebench
from tunebench.backbones import load_backbone
from tunebench.cli import main
from tunebench.data import DataConfig
from tunebench.errors import TunebenchError
from tunebench.prediction import Predictor
from tunebench.store import RunStore
from tunebench.tasks import get_task
from tunebench.tasks.token_classification import TokenSplit

NER = get_task("token-classification")


@pytest.fixture(scope="module")
def ner_data():
    return tiny_of("token-classification").data


def test_labels_sit_on_the_first_sub_token_only(tiny_model):
    backbone = load_backbone(tiny_model)
    index = {"O": 0, "B-PER": 1, "I-PER": 2}
    split = TokenSplit([["good", "movie"]], [["B-PER", "O"]], label_index=index)
    enc = NER.encode(backbone, split, 16)
    ids = enc.rows[0]["input_ids"]  # [CLS] good movie [SEP]
    assert len(ids) == 4
    assert enc.targets[0].tolist() == [-100, 1, 0, -100]
    assert enc.meta["first"][0].tolist() == [1, 2]


def test_words_cut_by_max_length_are_predicted_O_and_scored_as_misses(tiny_model):
    backbone = load_backbone(tiny_model)
    names = ["O", "B-PER", "I-PER"]
    index = {n: i for i, n in enumerate(names)}
    split = TokenSplit([["the", "movie", "good"]], [["O", "O", "B-PER"]], label_index=index)
    enc = NER.encode(backbone, split, 4)  # room for 2 words: 'good' is cut
    assert enc.meta["words"][0].tolist() == [0, 1]
    perfect = np.zeros((4, 3), dtype=np.float32)
    perfect[:, 0] = 1.0
    assert NER.word_predictions([perfect], enc, split, names) == [["O", "O", "O"]]
    assert NER.score([perfect], enc, split, names)["recall"] == 0.0  # the cut entity is missed


def test_flat_word_outputs_decode_like_per_row_outputs(tiny_model):
    backbone = load_backbone(tiny_model)
    names = ["O", "B-PER", "I-PER"]
    index = {n: i for i, n in enumerate(names)}
    split = TokenSplit(
        [["good", "great"], ["the", "movie", "good"]],
        [["B-PER", "I-PER"], ["O", "O", "B-PER"]],
        label_index=index,
    )
    enc = NER.encode(backbone, split, 16)
    flat = np.eye(3, dtype=np.float32)[[1, 2, 0, 0, 1]]  # one row per word, in order
    assert NER.word_predictions(flat, enc, split, names) == split.tags
    assert NER.score(flat, enc, split, names)["f1"] == 1.0


@pytest.fixture(scope="module")
def ner_ladder():
    out, _, rows = ladder("token-classification")
    return out, rows


def test_ner_records_entity_f1_per_type(ner_ladder):
    out, rows = ner_ladder
    rec = RunStore(out).all()[0]
    assert {"f1", "precision", "recall", "per_class_f1"} <= set(rec["dev_metrics"])
    assert set(rec["dev_metrics"]["per_class_f1"]) <= {"PER", "LOC"}


def test_frozen_word_features_learn_the_tags(ner_ladder):
    out, rows = ner_ladder
    assert next(r for r in rows if r["strategy"] == "features")["dev_mean"] > 0.3  # all-O scores 0
    rec = next(r for r in RunStore(out).all() if r["strategy"] == "features")
    assert rec["settings"]["classifier"] == "bilstm"  # the task's default frozen classifier (Table 7)


def test_cli_predict_writes_word_tags(ner_ladder, ner_data, tmp_path):
    out, rows = ner_ladder
    key = next(r["best_key"] for r in rows if r["strategy"] == "features")
    preds = tmp_path / "p.csv"
    assert (
        main(
            ["-q", "predict", "--model", str(out / "runs" / key), "--data", ner_data.dev, "--out", str(preds)]
        )
        == 0
    )
    lines = preds.read_text().splitlines()
    assert lines[0] == "row,tokens,tags" and len(lines) == 31


def test_table7_layer_combinations_are_features_options(tiny_model, ner_data, tmp_path):
    for layers in ("embeddings", "concat-last-4"):
        rows = tunebench.compare(
            ner_data,
            model=tiny_model,
            strategies=["features"],
            task="token-classification",
            out=tmp_path,
            options={"features": {"layers": layers, "grid": "1", "classifier": "logreg"}},
            show=False,
        )
        assert rows[0]["status"] == "ok"
    recs = {r["settings"]["layers"]: r for r in RunStore(tmp_path).all()}
    assert recs["embeddings"]["status"] == "ok"
    # the tiny model has embeddings + 2 layers, so "last 4" is 3 x 32 wide; 5 tags: O, B/I-LOC, B/I-PER
    # (I-LOC never occurs in train: its column is still there, so label ids stay aligned)
    assert recs["concat-last-4"]["trainable_params"] == (3 * 32 + 1) * 5


def test_word_features_are_the_hidden_states_at_first_sub_tokens(tiny_model, ner_data, tmp_path):
    import torch

    from tunebench.extract import FrozenSource

    backbone = load_backbone(tiny_model)
    bundle = NER.load(ner_data)
    enc = NER.encode(backbone, bundle.dev, 64)
    X = NER.frozen_inputs(FrozenSource(backbone, tmp_path, 64), enc, "mean", "last")
    y = NER.frozen_targets(enc)
    assert len(X) == len(y) == sum(len(t) for t in bundle.dev.tokens)
    row = enc.rows[0]
    with torch.no_grad():
        hidden = backbone.model(input_ids=torch.tensor([row["input_ids"]])).last_hidden_state[0]
    first = enc.meta["first"][0]
    np.testing.assert_allclose(X[: len(first)], hidden[first].numpy(), atol=2e-3)  # stored as float16
    assert y[: len(first)].tolist() == [bundle.label_names.index(t) for t in bundle.dev.tags[0]]


def test_dev_tag_missing_from_train_is_named(tmp_path):
    (tmp_path / "tr.txt").write_text("a NN O B-PER\nb NN O O\n")
    (tmp_path / "dv.txt").write_text("a NN O B-ORG\n")
    with pytest.raises(TunebenchError, match=r"dv.txt: tags B-ORG do not occur in train"):
        NER.load(DataConfig(data=str(tmp_path / "tr.txt"), dev=str(tmp_path / "dv.txt")))


def test_probe_every_layer_for_ner(tiny_model, ner_data, tmp_path):
    from tunebench.analysis.probe import probe_layers

    result = probe_layers(ner_data, model=tiny_model, out=tmp_path, task="token-classification", show=False)
    assert result["metric"] == "f1" and [e["layer"] for e in result["layers"]] == [0, 1, 2]
    assert result["best"]["dev"]["f1"] > 0.3 and (tmp_path / "probe.png").is_file()


@pytest.mark.parametrize(
    "options",
    [
        {"classifier": "bilstm", "layers": "last"},
        {"classifier": "logreg", "layers": "weighted-all"},
        {"classifier": "bilstm", "layers": "weighted-all"},  # the task's default
    ],
)
def test_table7_tagger_on_frozen_word_vectors(tiny_model, ner_data, tmp_path, options):
    """BiLSTM and learned layer weights train on the cached word vectors; the backbone stays frozen,
    the export predicts what the run stored, and the BiLSTM learns context (I-PER follows B-PER)."""
    opts = {**options, "tagger_epochs": "30", "tagger_lr": "1e-2"}  # 3 steps per epoch here
    rows = tunebench.compare(
        ner_data,
        model=tiny_model,
        strategies=["features"],
        task="token-classification",
        out=tmp_path,
        options={"features": opts},
        show=False,
    )
    assert rows[0]["status"] == "ok", rows[0]["status"]
    rec = RunStore(tmp_path).all()[0]
    hidden, tags = 32, 5
    lstm = (
        4 * 128 * (hidden + 128 + 2) * 2 if options["classifier"] == "bilstm" else 0
    )  # 4 gates, 2 biases, 2 directions
    mix = 3 if options.get("layers") == "weighted-all" else 0  # 2 block weights + the scale gamma
    out_in = 2 * 128 if options["classifier"] == "bilstm" else hidden
    assert rec["trainable_params"] == lstm + mix + out_in * tags + tags
    run_dir = tmp_path / "runs" / rec["key"]
    stored = load_file(str(run_dir / "predictions.safetensors"))["dev"]
    outputs, _, _ = Predictor(run_dir).outputs(NER.read_inputs(ner_data.dev))
    np.testing.assert_allclose(outputs, stored, rtol=1e-4, atol=1e-4)
    if options.get("layers") == "embeddings":  # word identity + the neighbours: the whole task
        assert rec["dev_metrics"]["f1"] > 0.8


def test_tagger_options_are_for_token_tasks_only(tiny_model, tiny_data, tmp_path):
    data = DataConfig(data=tiny_data["train"], dev=tiny_data["dev"])
    with pytest.raises(
        TunebenchError, match="BiLSTM and the learned layer weights are for token classification"
    ):
        tunebench.compare(
            data,
            model=tiny_model,
            strategies=["features"],
            out=tmp_path,
            options={"features": {"classifier": "bilstm"}},
            show=False,
        )
