"""Extractive QA end to end on the tiny model: windows and their span labels, the span loss, every
applicable strategy (enrolled from the registry) finishes and round-trips through export, predict."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import ladder, tiny_of

import tunebench
from tunebench.backbones import load_backbone
from tunebench.cli import main
from tunebench.comparison import default_task
from tunebench.data import DataConfig
from tunebench.errors import TunebenchError
from tunebench.store import RunStore
from tunebench.strategies import STRATEGIES
from tunebench.tasks import get_task
from tunebench.tasks.question_answering import MASKED, SpanHead
from tunebench.tasks.question_answering.tiny import squad_articles, write_squad

QA = get_task("question-answering")
QA_STRATEGIES = [n for n in STRATEGIES.names() if QA.applies(STRATEGIES.get(n)) is None]


@pytest.fixture(scope="module")
def qa_data():
    return tiny_of("question-answering").data


def test_windows_decode_to_the_answer(tiny_model, qa_data):
    backbone = load_backbone(tiny_model)
    bundle = QA.load(qa_data)
    enc = QA.encode(backbone, bundle.train, 32)
    assert enc.targets.shape == (len(enc), 2) and enc.targets.dtype == np.int64
    assert enc.num_examples == len(bundle.train)
    windows = np.bincount(enc.groups)
    assert windows.max() > 1 and windows.min() == 1  # long contexts get several windows
    tok = backbone.tokenizer
    for i, ex in enumerate(bundle.train.examples):
        own = np.flatnonzero(enc.groups == i)
        labelled = [w for w in own if tuple(enc.targets[w]) != (0, 0)]
        assert labelled, f"question {ex['id']}: the answer is in no window"
        for w in labelled:
            s, e = enc.targets[w]
            ids = enc.rows[w]["input_ids"]
            assert len(ids) <= 32 and len(enc.rows[w]["token_type_ids"]) == len(ids)
            assert tok.decode(ids[s : e + 1]) == ex["answers"][0]["text"]
            offsets = enc.meta["features"][w]["offsets"]
            assert ex["context"][offsets[s][0] : offsets[e][1]] == ex["answers"][0]["text"]


def test_gold_outputs_score_100(tiny_model, qa_data):
    backbone = load_backbone(tiny_model)
    bundle = QA.load(qa_data)
    enc = QA.encode(backbone, bundle.dev, 32)
    outputs = []
    for row, (s, e) in zip(enc.rows, enc.targets):
        o = np.zeros((len(row["input_ids"]), 2), np.float32)  # (T_i, 2)
        o[s, 0] += 10.0
        o[e, 1] += 10.0
        outputs.append(o)
    assert QA.score(outputs, enc, bundle.dev, bundle.label_names) == {"f1": 100.0, "exact_match": 100.0}
    preds = QA.predictions(outputs, enc, bundle.dev, bundle.label_names)
    assert [p["answer"] for p in preds] == [ex["answers"][0]["text"] for ex in bundle.dev.examples]
    assert set(preds[0]) == {"id", "question", "answer", "score"}


def test_span_loss_is_the_mean_of_start_and_end_cross_entropy():
    logits = torch.tensor([[[1.0, 0.0], [2.0, 1.0], [0.0, 3.0]]])  # (B=1, T=3, 2)
    labels = torch.tensor([[1, 2]])  # start at token 1, end at token 2
    start = -math.log(math.exp(2) / (math.exp(1) + math.exp(2) + math.exp(0)))
    end = -math.log(math.exp(3) / (math.exp(0) + math.exp(1) + math.exp(3)))
    assert QA.loss(logits, labels).item() == pytest.approx((start + end) / 2, rel=1e-6)


def test_span_head_masks_padding():
    head = SpanHead(8)
    hidden = torch.randn(2, 4, 8)  # (B, T, H)
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]])
    logits = head(hidden, mask)
    assert logits.shape == (2, 4, 2)
    assert (logits[mask == 0] == MASKED).all() and (logits[mask == 1] != MASKED).all()


def test_named_dataset_infers_the_task():
    assert default_task(DataConfig(data="xquad-en")) == "question-answering"


def test_dev_split_off_by_article_and_sizes(tmp_path):
    train = write_squad(tmp_path / "t.json", squad_articles(10, 5, paragraphs=1))
    bundle = QA.load(DataConfig(data=train))
    assert {ex["article"] for ex in bundle.dev.examples} == {9}  # the last 10% of 10 articles
    assert len(bundle.train) == 18 and bundle.test is None
    small = QA.load(DataConfig(data=train, train_size=5, eval_size=1))
    assert [ex["id"] for ex in small.train.examples] == [ex["id"] for ex in bundle.train.examples[:5]]
    assert len(small.dev) == 1
    one = write_squad(tmp_path / "one.json", squad_articles(1, 5))
    with pytest.raises(TunebenchError, match="give --dev FILE"):
        QA.load(DataConfig(data=one))
    with pytest.raises(TunebenchError, match="train_size 99 is larger than the 18"):
        QA.load(DataConfig(data=train, train_size=99))


@pytest.fixture(scope="module")
def qa_ladder():
    out, _, rows = ladder("question-answering")
    return out, rows


def test_qa_records_squad_metrics_per_question(qa_ladder):
    out, rows = qa_ladder
    assert {"features", "head"} <= set(QA_STRATEGIES) and "cosine" not in QA_STRATEGIES
    for rec in RunStore(out).all():
        for split in ("dev", "test"):
            m = rec[f"{split}_metrics"]
            assert set(m) == {"f1", "exact_match"} and 0 <= m["exact_match"] <= m["f1"] <= 100
        assert rec["sizes"] == {"train": 80, "dev": 24, "test": 24}
        assert rec["rows"]["train"] > 80  # some questions have several windows


def test_cli_predict_writes_answers(qa_ladder, qa_data, tmp_path):
    out, rows = qa_ladder
    key = next(r["best_key"] for r in rows if r["strategy"] == "full")
    unanswered = json.loads(open(qa_data.dev).read())
    for article in unanswered["data"]:
        for para in article["paragraphs"]:
            for qa in para["qas"]:
                del qa["answers"]  # questions to answer: no gold needed
    data = write_squad(tmp_path / "questions.json", unanswered)
    preds = tmp_path / "p.csv"
    argv = ["-q", "predict", "--model", str(out / "runs" / key), "--data", data, "--out", str(preds)]
    assert main(argv) == 0
    lines = preds.read_text().splitlines()
    assert lines[0] == "row,id,question,answer,score" and len(lines) == 25
    first = lines[1].split(",")
    assert first[1] == unanswered["data"][0]["paragraphs"][0]["qas"][0]["id"]
    assert first[3] in unanswered["data"][0]["paragraphs"][0]["context"]  # a span of the context
    float(first[4])


def test_cli_strategies_says_why_cosine_does_not_apply(capsys):
    assert main(["strategies", "--task", "question-answering"]) == 0
    text = capsys.readouterr().out
    assert "cosine: needs text pairs (--text-pair-col): it compares two separately embedded texts" in text


def test_frozen_span_reader_learns_which_word_the_question_asks_for(tiny_model, qa_data, tmp_path):
    """The `features` strategy on QA: cached token states of the frozen model -> span reader. Each
    context holds both answers (a positive and a negative word), so a model blind to the question is
    right at most half the time; the reader attends to the question and is not. On 24 test questions
    one reader's exact match moves by 15-20 points from seed to seed (60 seeds at lr 3e-3: mean 70,
    one in two at 75 or more; 10 at 1e-2: mean 75), so the reader is judged on the mean of five."""
    common = dict(model=tiny_model, task="question-answering", out=tmp_path, max_length=48, show=False)
    # the tiny random model's word identity sits in its embeddings: mix them in (last 4 of 3 layers)
    opts = {"layers": "weighted-last-4", "tagger_epochs": "100", "tagger_lr": "1e-2"}
    seeds = list(range(5))
    tunebench.compare(qa_data, strategies=["features"], options={"features": opts}, seeds=seeds, **common)
    linear = {**opts, "classifier": "logreg"}
    tunebench.compare(qa_data, strategies=["features"], options={"features": linear}, **common)
    runs = RunStore(tmp_path).all()
    reader = [r for r in runs if r["settings"]["classifier"] == "bilstm"]
    (logreg,) = [r for r in runs if r["settings"]["classifier"] == "logreg"]
    assert len(reader) == len(seeds) and reader[0]["trainable_params"] > logreg["trainable_params"]
    exact = [r["test_metrics"]["exact_match"] for r in reader]
    assert np.mean(exact) >= 65, exact
    assert logreg["test_metrics"]["exact_match"] <= 50, logreg["test_metrics"]


def test_qa_features_default_to_the_reader_on_learned_layer_weights():
    from tunebench.comparison import resolve_strategy

    strategy, cfg = resolve_strategy("features", {}, {}, 128, QA)
    assert (strategy.classifier, strategy.layers) == ("bilstm", "weighted-all")
    strategy, _ = resolve_strategy("features", {"classifier": "logreg"}, {}, 128, QA)
    assert strategy.classifier == "logreg"  # the user's --opt wins


def test_qa_head_trains_on_cached_windows_with_the_backbone_frozen(qa_ladder):
    """head-only runs the frozen backbone once (the token-state cache), not every epoch."""
    out, _ = qa_ladder
    rec = next(r for r in RunStore(out).all() if r["strategy"] == "head")
    assert rec["trainable_params"] == 32 * 2 + 2  # the start/end layer on the tiny model's 32 dims
    # one cache of every layer at every token per split, filled by whichever of features / head ran
    # first and reused by the other
    assert len(list((out / "cache").rglob("*.safetensors"))) >= 3


def test_span_reader_masks_question_and_padding():
    from tunebench.tasks.question_answering.reader import MASKED as READER_MASKED
    from tunebench.tasks.question_answering.reader import SpanReader

    torch.manual_seed(0)
    for hidden in (0, 8):
        reader = SpanReader(n_layers=3, width=16, hidden=hidden)
        features = torch.randn(2, 6, 3, 16)  # (B, T, K, H)
        mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
        segments = torch.tensor([[0, 0, 0, 1, 1, 0], [0, 0, 1, 1, 0, 0]])  # [CLS] q [SEP] context [SEP]
        logits = reader(features, mask, segments)
        choosable = ((segments == 1) | (torch.arange(6) == 0)) & (mask == 1)
        assert (logits[~choosable] == READER_MASKED).all() and (logits[choosable] != READER_MASKED).all()


@pytest.mark.slow
def test_xquad_en_split_by_article(shared_data):
    if not (shared_data / "squad" / "xquad.en.json").is_file():
        pytest.skip("squad/xquad.en.json is not in ../shared/data")
    bundle = QA.load(DataConfig(data="xquad-en", data_dir=str(shared_data)))
    assert len(bundle.train) + len(bundle.dev) == 925 and len(bundle.test) == 265
    assert {ex["article"] for ex in bundle.train.examples} == set(range(32))
    assert {ex["article"] for ex in bundle.dev.examples} == set(range(32, 36))
    assert {ex["article"] for ex in bundle.test.examples} == set(range(36, 48))
    assert "dev = articles 33-36" in bundle.describe()
