"""Imbalanced and many classes: the long-tail rule, class weights, the balanced sampler, label
smoothing, macro-F1 selection, the rare-class column and the never-predicted diagnostic."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

import tunebench
from tunebench import leaderboard
from tunebench.data import DataConfig
from tunebench.data.splits import long_tail_indices
from tunebench.errors import TunebenchError
from tunebench.report.diagnostics import diagnose
from tunebench.tasks import get_task
from tunebench.testing import make_rows, write_tsv
from tunebench.training import imbalance
from tunebench.training.batching import TensorBatches
from tunebench.training.config import TrainConfig


def test_long_tail_keeps_n_max_times_rho_to_the_minus_i_over_c_minus_1():
    labels = np.repeat(np.arange(4), 100)
    kept = long_tail_indices(labels, 4, 10.0, seed=0)
    counts = np.bincount(labels[kept], minlength=4)
    assert counts.tolist() == [100, int(100 * 10 ** (-1 / 3)), int(100 * 10 ** (-2 / 3)), 10]
    assert kept == long_tail_indices(labels, 4, 10.0, seed=0)  # seeded
    assert kept != long_tail_indices(labels, 4, 10.0, seed=1)


def test_long_tail_option_shapes_the_training_split(tmp_path):
    rows = make_rows(200, 1)
    cfg = DataConfig(data=str(write_tsv(tmp_path / "t.tsv", rows)), long_tail=4.0, seed=0)
    bundle = get_task("text-classification").load(cfg)
    counts = Counter(bundle.train.labels)
    assert max(counts.values()) / min(counts.values()) == pytest.approx(4.0, rel=0.05)
    with pytest.raises(TunebenchError, match="long_tail .* imbalance ratio >= 1"):
        DataConfig(data="x.tsv", long_tail=0.5)


def test_balanced_weights_are_scikit_learns():
    counts = np.array([90, 9, 1])
    y = np.repeat(np.arange(3), counts)
    expected = compute_class_weight("balanced", classes=np.arange(3), y=y)
    np.testing.assert_allclose(
        imbalance.class_weights("balanced", counts, ["a", "b", "c"]), expected, rtol=1e-6
    )
    assert imbalance.class_weights("none", counts, ["a", "b", "c"]) is None


def test_weights_from_a_file_and_its_bad_forms(tmp_path):
    names = ["neg", "pos"]
    (tmp_path / "w.json").write_text(json.dumps({"pos": 3}))
    assert imbalance.class_weights(str(tmp_path / "w.json"), np.array([5, 5]), names).tolist() == [1.0, 3.0]
    (tmp_path / "w.csv").write_text("label,weight\nneg,0.5\n")
    assert imbalance.class_weights(str(tmp_path / "w.csv"), np.array([5, 5]), names).tolist() == [0.5, 1.0]
    (tmp_path / "bad.json").write_text(json.dumps({"maybe": 2}))
    with pytest.raises(TunebenchError, match=r"labels \['maybe'\] are not in the training data"):
        imbalance.class_weights(str(tmp_path / "bad.json"), np.array([5, 5]), names)
    (tmp_path / "neg.json").write_text(json.dumps({"pos": -1}))
    with pytest.raises(TunebenchError, match="must be >= 0"):
        imbalance.class_weights(str(tmp_path / "neg.json"), np.array([5, 5]), names)
    with pytest.raises(TunebenchError, match="--class-weights nope.json: none, balanced, or a JSON/CSV file"):
        TrainConfig(class_weights="nope.json")


def test_weights_and_smoothing_change_the_loss():
    task = get_task("text-classification")
    logits, labels = torch.tensor([[2.0, 0.0], [0.0, 1.0], [1.0, 0.0]]), torch.tensor([0, 1, 1])
    plain = task.loss(logits, labels)
    weighted = task.loss(logits, labels, weight=torch.tensor([1.0, 3.0]))
    manual = torch.nn.functional.cross_entropy(logits, labels, reduction="none")
    assert weighted == pytest.approx(float((manual * torch.tensor([1.0, 3.0, 3.0])).sum() / 7))
    assert task.loss(logits, labels, label_smoothing=0.1) != plain


def test_balanced_sampler_draws_every_class_equally_often():
    labels = np.array([0] * 90 + [1] * 10)
    batches = imbalance.BalancedBatches(TensorBatches(np.zeros((100, 2), np.float32), labels), labels)
    drawn = np.concatenate([b["labels"].numpy() for e in range(20) for b in batches.train_batches(32, e)])
    assert len(drawn) == 20 * 100
    assert 0.45 < drawn.mean() < 0.55  # class 1 is 10% of the rows, half of the draws


def test_selection_is_macro_f1_from_three_to_one():
    task = get_task("text-classification")
    assert imbalance.selection_metric("auto", task, np.array([30, 10]))[0] == "macro_f1"
    assert imbalance.selection_metric("auto", task, np.array([29, 10]))[0] == "accuracy"
    assert imbalance.selection_metric("accuracy", task, np.array([90, 1]))[0] == "accuracy"
    assert imbalance.selection_metric("auto", get_task("token-classification"), np.array([90, 1]))[0] == "f1"
    with pytest.raises(TunebenchError, match="--select macro-f1: text-regression selects by spearman"):
        imbalance.selection_metric("macro-f1", get_task("text-regression"), None)


def test_options_the_task_cannot_take_are_refused_in_one_line():
    with pytest.raises(TunebenchError, match=r"--class-weights \(full\): text-regression has no classes"):
        imbalance.check_options(TrainConfig(class_weights="balanced"), get_task("text-regression"), "full")
    with pytest.raises(
        TunebenchError, match=r"--sampler balanced \(full\): token-classification has no single"
    ):
        imbalance.check_options(TrainConfig(sampler="balanced"), get_task("token-classification"), "full")
    imbalance.check_options(TrainConfig(class_weights="balanced"), get_task("token-classification"), "full")


def test_new_settings_leave_earlier_run_keys_alone():
    plain = TrainConfig().identity()
    assert "class_weights" not in plain and "sampler" not in plain and "label_smoothing" not in plain
    assert TrainConfig(sampler="balanced").identity()["sampler"] == "balanced"


@pytest.fixture(scope="module")
def skewed(tmp_path_factory):
    """Tiny reviews with positives 6:1 over negatives in train."""
    root = tmp_path_factory.mktemp("skewed")
    rows = make_rows(200, 1)
    train = [r for r in rows if r[1] == "pos"][:84] + [r for r in rows if r[1] == "neg"][:14]
    return {
        "train": str(write_tsv(root / "train.tsv", train)),
        "dev": str(write_tsv(root / "dev.tsv", make_rows(48, 2))),
    }


def test_imbalance_options_run_every_kind_of_strategy(tiny_model, skewed, tmp_path):
    data = DataConfig(data=skewed["train"], dev=skewed["dev"])
    train = {"class_weights": "balanced", "label_smoothing": 0.1, "sampler": "balanced", "epochs": 2}
    names = ["features", "head", "full", "lora"]
    rows = tunebench.compare(data, model=tiny_model, strategies=names, out=tmp_path, train=train, show=False)
    assert rows.metric == "macro_f1"  # 6:1 in train: auto selection
    for record in rows.records:
        assert record["status"] == "ok", record.get("traceback")
        assert record["selection"] == {
            "metric": "macro_f1",
            "why": "training classes imbalanced 6.0:1 (>= 3:1)",
        }
        if record["strategy"] != "features":
            assert record["train_config"]["sampler"] == "balanced"
    assert all(r["rare_f1"] is not None for r in rows)  # the rare-class column is shown
    plain = tunebench.compare(data, model=tiny_model, strategies=["head"], out=tmp_path, show=False)
    assert plain.records[0]["key"] != next(r for r in rows.records if r["strategy"] == "head")["key"]


def test_the_linear_probe_weighs_classes_as_scikit_learns_balanced():
    from sklearn.linear_model import LogisticRegression

    from tunebench.estimators import LinearProbe

    rng = np.random.default_rng(0)
    y = np.array([0] * 180 + [1] * 20)
    X = rng.normal(size=(200, 4)) + y[:, None] * 0.8
    weights = imbalance.class_weights("balanced", np.bincount(y), ["a", "b"])
    probe = LinearProbe(C=1.0, n_classes=2).fit(X, y, X, y, class_weight=weights)
    plain = LinearProbe(C=1.0, n_classes=2).fit(X, y, X, y)
    Z = (X - X.mean(0)) / (X.std(0) + 1e-6)
    ref = LogisticRegression(C=1.0, max_iter=3000, class_weight="balanced").fit(Z, y)
    np.testing.assert_array_equal(probe.decision_function(X).argmax(-1), ref.predict(Z))
    assert (probe.decision_function(X).argmax(-1) == 1).sum() > (
        plain.decision_function(X).argmax(-1) == 1
    ).sum()


def test_rare_classes_column_and_never_predicted_warning():
    counts = {"a": 100, "b": 50, "c": 3}
    assert leaderboard.rare_classes(counts) == ["c"]
    assert leaderboard.rare_classes({"a": 10, "b": 9}) == []
    record = {
        "strategy": "head",
        "status": "ok",
        "label_counts": {"train": counts},
        "dev_metrics": {
            "accuracy": 0.9,
            "macro_f1": 0.6,
            "per_class_f1": {"a": 0.9, "b": 0.9, "c": 0.0},
            "never_predicted": ["c"],
        },
    }
    assert leaderboard.rare_f1(record) == 0.0
    codes = {w.code: w for w in diagnose(record)}
    assert "never-predicted" in codes and "'c'" in codes["never-predicted"].message
    assert "class-imbalance" in codes


def test_report_shows_the_rarest_classes_first():
    from types import SimpleNamespace

    from tunebench.report.sections import _per_class

    counts = {f"c{i}": 100 - i for i in range(30)}  # c29 is the rarest
    record = {
        "key": "k",
        "label_counts": {"train": counts},
        "dev_metrics": {"per_class_f1": dict.fromkeys(counts, 0.5)},
    }
    html = _per_class(SimpleNamespace(records=[record], rows=[{"strategy": "head", "best_key": "k"}]))
    assert "rarest in training first" in html
    assert (
        html.index(">c29<") < html.index(">c28<") and ">c0<" not in html
    )  # 24 shown, the commonest left out


def test_balanced_draws_of_token_rows_are_still_grouped_by_length():
    """Padding stays low: the sampler's rows go through the same length grouping as a plain epoch."""
    from tunebench.training.batching import TokenBatches

    lengths = [3, 30] * 64
    rows = [{"input_ids": list(range(1, n + 1))} for n in lengths]
    labels = np.array([0] * 120 + [1] * 8)
    batches = imbalance.BalancedBatches(TokenBatches(rows, labels, 0), labels)
    mixed = [b for b in batches.train_batches(16, 0) if len(set(b["attention_mask"].sum(1).tolist())) > 1]
    assert len(mixed) <= 1  # at most the batch where the long rows end and the short ones begin
