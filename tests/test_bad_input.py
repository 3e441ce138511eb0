"""Bad input answered with one line naming the file, row and column and the fix (issue 12's table)."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest
from conftest import ladder
from PIL import Image

import tunebench
from tunebench.backbones import text
from tunebench.cli import main
from tunebench.data import DataConfig, load_text_classification
from tunebench.errors import TunebenchError
from tunebench.report.diagnostics import diagnose
from tunebench.testing import make_rows, write_tsv


@pytest.mark.parametrize("cell", ["NaN", "None", "null", "nan"])
def test_nan_none_null_labels_are_missing_not_a_class(tmp_path, cell):
    rows = make_rows(20, 1)
    rows[5] = (rows[5][0], cell)
    path = write_tsv(tmp_path / "train.tsv", rows)
    with pytest.raises(TunebenchError) as err:
        load_text_classification(DataConfig(data=str(path)))
    assert "missing label in column 'label'; fill it in or remove the row" in str(err.value)
    assert str(path) in str(err.value) and "7" in str(err.value)  # the file's line 7 (header is 1)


def test_uneven_classes_with_balanced_counts_says_harder_not_rarer():
    rec = {
        "strategy": "full",
        "status": "ok",
        "task": "text-classification",
        "label_counts": {"dev": {"a": 250, "b": 240}},
        "dev_metrics": {"accuracy": 0.9, "macro_f1": 0.7, "per_class_f1": {"a": 0.95, "b": 0.45}},
    }
    (w,) = [w for w in diagnose(rec) if w.code == "uneven-classes"]
    assert "not imbalanced (240-250 per class)" in w.message and "no label counts" not in w.message


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--data", "{dir}"], "is a directory; give a data file"),
        (["--model", "./no/such/model"], "model './no/such/model': no such folder"),
        (["--model", "{dir}"], "not a model folder (no config.json); give the folder save_pretrained wrote"),
        (["--opt", "head.lr=-1"], "--opt head.lr=-1: must be > 0"),
        (["--opt", "head.foo=3"], "--opt head.foo: unknown option; head takes none of its own"),
        (["--opt", "head.epochs=two"], "--opt head.epochs=two: expected an integer"),
        (["--class-weights", "{dir}/none.json"], "none, balanced, or a JSON/CSV file of label -> weight"),
        (["--long-tail", "0.5"], "long_tail (--long-tail) must be an imbalance ratio >= 1"),
        (["--ewc", "-1"], "--ewc must be >= 0"),
        (["--ewc", "1", "--reference", "{dir}/none.txt"], "none.txt: no such file; give a text file"),
        (["--replay", "{dir}/none.txt"], "none.txt: no such file; give a text file (one text per line)"),
        (["--replay-ratio", "5"], "--replay-ratio must be in (0, 4]"),
    ],
    ids=[
        "data-is-a-folder",
        "no-such-model-folder",
        "model-folder-without-config",
        "opt-lr-negative",
        "opt-unknown",
        "opt-not-a-number",
        "class-weights-file-missing",
        "long-tail-below-1",
        "ewc-negative",
        "reference-file-missing",
        "replay-file-missing",
        "replay-ratio-above-4",
    ],
)
def test_bad_input_is_one_line_with_the_fix(tiny_model, tiny_data, tmp_path, capsys, args, words):
    args = [a.format(dir=tmp_path) for a in args]
    base = {"--data": tiny_data["train"], "--model": tiny_model, "--out": str(tmp_path / "out")}
    for flag, value in zip(args[::2], args[1::2]):
        if flag in base:
            base[flag] = value
    extra = [a for f, v in zip(args[::2], args[1::2]) if f not in ("--data", "--model") for a in (f, v)]
    argv = ["compare", *[a for kv in base.items() for a in kv], *extra, "--strategies", "head"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1, err


def test_a_one_class_image_folder_is_refused_before_training(tmp_path, capsys):
    for i in range(4):
        (tmp_path / "imgs" / "cat").mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((20, 20, 3), 40 * i, np.uint8)).save(tmp_path / "imgs" / "cat" / f"{i}.png")
    argv = ["compare", "--data", str(tmp_path / "imgs"), "--task", "image-classification"]
    assert main([*argv, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert "one class (cat); image classification needs at least 2" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("sep", [";", "\t"])
def test_a_csv_separated_by_semicolons_or_tabs_is_read_as_written(tmp_path, sep):
    rows = make_rows(20, 1)
    path = tmp_path / "train.csv"
    path.write_text("\n".join(sep.join(r) for r in [("sentence", "label"), *rows]) + "\n")
    bundle = load_text_classification(DataConfig(data=str(path)))
    assert len(bundle.train) + len(bundle.dev) == 20 and sorted(bundle.label_names) == ["neg", "pos"]


def test_predict_says_what_task_the_export_is_when_the_input_does_not_fit(tmp_path, capsys):
    out, records, _ = ladder("token-classification")
    export = out / "runs" / records["full"]["key"]
    capsys.readouterr()  # what building the shared ladder printed
    path = tmp_path / "sentences.csv"
    path.write_text("sentence\nthe film was great\n")
    code = main(["predict", "--model", str(export), "--data", str(path), "--out", str(tmp_path / "p.csv")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and f"(the export in {export} is a token-classification model)" in err, err
    assert len(err.splitlines()) == 1


def test_an_uncached_hub_id_fails_fast_when_the_hub_is_unreachable(monkeypatch):
    def refused(*a, **k):
        raise OSError("unreachable")

    monkeypatch.setattr(text.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(text.socket, "create_connection", refused)
    monkeypatch.delenv("HTTPS_PROXY", raising=False)
    monkeypatch.delenv("https_proxy", raising=False)
    t0 = time.perf_counter()
    with pytest.raises(TunebenchError, match="not cached and the hub is unreachable"):
        text.load_backbone("some-org/not-cached-anywhere")
    assert time.perf_counter() - t0 < 5


def test_text_the_tokenizer_cannot_read_is_warned_about(tiny_model, tmp_path, caplog):
    rows = [("😀 🎉 " * (1 + i % 3), "pos" if i % 2 else "neg") for i in range(40)]
    path = write_tsv(tmp_path / "train.tsv", rows)
    with caplog.at_level(logging.WARNING, logger="tunebench"):
        tunebench.compare(
            str(path), model=tiny_model, strategies=["features"], out=tmp_path / "o", show=False
        )
    assert "100% of training tokens are unknown to the" in caplog.text
