"""Distillation (tunebench distill): Hinton et al.'s loss, students cut from the teacher's backbone
(`MODEL:Ln`), unlabelled text the teacher labels, a student that predicts like any export, one-line
errors."""

from __future__ import annotations

import json
import re

import pytest
import torch
from conftest import ladder, tiny_of

from tunebench.backbones import encoder_layers, load_backbone
from tunebench.cli import main
from tunebench.distill import DistillLoss, distill
from tunebench.errors import TunebenchError
from tunebench.prediction import Predictor
from tunebench.tasks import get_task
from tunebench.testing import make_rows, write_tsv

TC = "text-classification"


def test_the_soft_loss_is_t_squared_kl_and_unlabelled_rows_have_no_hard_loss():
    task = get_task(TC)
    student = torch.tensor([[1.0, -1.0], [0.5, 0.2], [0.0, 2.0]])
    teacher = torch.tensor([[2.0, 0.0], [0.0, 1.0], [-1.0, 1.0]])
    labels = torch.cat([torch.tensor([[0.0], [1.0], [float("nan")]]), teacher], 1)
    T = 2.0
    p = torch.softmax(teacher / T, -1)
    kl = (p * (p.log() - torch.log_softmax(student / T, -1))).sum(-1).mean() * T * T
    assert torch.isclose(DistillLoss(task, T, 1.0, "kl").loss(student, labels), kl)
    hard = task.loss(student[:2], torch.tensor([0, 1]))
    mixed = DistillLoss(task, T, 0.3, "kl").loss(student, labels)
    assert torch.isclose(mixed, 0.3 * kl + 0.7 * hard)
    mse = DistillLoss(task, T, 1.0, "mse").loss(student, labels)
    assert torch.isclose(mse, ((student - teacher) ** 2).mean())


def test_model_colon_ln_keeps_the_bottom_blocks_and_refuses_too_many():
    model = tiny_of(TC).model
    full, cut = load_backbone(model), load_backbone(f"{model}:L1")
    assert len(encoder_layers(cut.model)) == 1 and cut.num_layers == 1 and cut.name == f"{model}:L1"
    kept = encoder_layers(full.model)[0].state_dict()
    for name, tensor in encoder_layers(cut.model)[0].state_dict().items():
        assert torch.equal(tensor, kept[name])
    with pytest.raises(TunebenchError, match=r"has 2 blocks; keep 1 to 1 of them"):
        load_backbone(f"{model}:L2")


@pytest.fixture(scope="module")
def student(tmp_path_factory):
    out, records, _ = ladder(TC)
    teacher = out / "runs" / records["full"]["key"]
    root = tmp_path_factory.mktemp("distill")
    unlabeled = write_tsv(root / "unlabeled.tsv", make_rows(100, 7))
    kw = dict(unlabeled=str(unlabeled), train={"epochs": 4, "batch_size": 16, "lr": 1e-3}, show=False)
    tiny = tiny_of(TC)
    result = distill(teacher, f"{tiny.model}:L1", tiny.data, out=root / "out", export=root / "student", **kw)
    return root, teacher, result, kw


def test_a_cut_student_learns_from_labels_and_teacher_and_predicts_as_measured(student):
    root, _, result, _ = student
    record = result["record"]
    losses = [h["train_loss"] for h in record["history"]]
    assert record["status"] == "ok" and losses[-1] < losses[0]
    assert record["unlabeled_rows"] == 100 and result["student"]["train_rows"] == 96 + 100
    assert result["student"]["params"] < result["teacher"]["params"]
    assert result["student"]["latency_ms"] > 0 and result["teacher"]["examples_per_second"] > 0
    task, tiny = get_task(TC), tiny_of(TC)
    bundle = task.load_bundle(tiny.data)
    outputs, enc, _ = Predictor(root / "student").outputs(bundle.test)
    assert task.score(outputs, enc, bundle.test, bundle.label_names) == record["test_metrics"]
    table = (root / "out" / "distill.md").read_text()
    assert "| teacher: full" in table and "| student:" in table
    assert (
        json.loads((root / "out" / "distill.json").read_text())["student"]["test"]
        == result["student"]["test"]
    )


def test_a_rerun_reuses_the_student_run(student):
    root, teacher, result, kw = student
    tiny = tiny_of(TC)
    again = distill(teacher, f"{tiny.model}:L1", tiny.data, out=root / "out", **kw)
    assert again["record"] == result["record"]


def test_the_cheapest_student_is_a_head_on_the_frozen_model(student, tmp_path):
    _, teacher, _, _ = student
    tiny = tiny_of(TC)
    result = distill(
        teacher, tiny.model, tiny.data, strategy="head", train={"epochs": 3}, out=tmp_path, show=False
    )
    record = result["record"]
    assert record["status"] == "ok" and record["trainable_params"] == 32 * 2 + 2


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"temperature": 0}, "--temperature 0: must be > 0"),
        ({"alpha": 1.5}, "--alpha 1.5: the soft loss's weight, in [0, 1]"),
        ({"strategy": "features"}, "--student-strategy features: the student trains by gradient"),
    ],
    ids=["temperature", "alpha", "estimator-student"],
)
def test_bad_settings_are_one_line(student, kwargs, words, tmp_path):
    _, teacher, _, _ = student
    tiny = tiny_of(TC)
    with pytest.raises(TunebenchError, match=re.escape(words)):
        distill(teacher, tiny.model, tiny.data, out=tmp_path, show=False, **kwargs)


def test_a_teacher_of_other_labels_or_another_task_is_refused_from_the_command_line(
    student, tmp_path, capsys
):
    _, teacher, _, _ = student
    other = write_tsv(
        tmp_path / "other.tsv", [(t, "x" if i % 2 else "y") for i, (t, _) in enumerate(make_rows(40, 3))]
    )
    argv = ["distill", "--teacher", str(teacher), "--student", tiny_of(TC).model, "--data", str(other)]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert "distill: the teacher predicts ['neg', 'pos'], the data has labels ['x', 'y']" in err
    assert len(err.splitlines()) == 1
    out, records, _ = ladder("token-classification")
    ner = out / "runs" / records["full"]["key"]
    with pytest.raises(TunebenchError, match="distill: for text classification and regression teachers"):
        distill(ner, tiny_of(TC).model, tiny_of(TC).data, out=tmp_path / "n", show=False)
