"""The one seeded split / subsample / cap family (`tunebench.data.splits`) selects exactly the rows the
three copies it replaced selected (text, images: scikit-learn stratified with a plain fallback; NER:
Python's `random`). The expected indices were computed with the old code, so a change here means a
seed no longer picks the same examples as before: cached features and past results stop matching."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tunebench.data import DataConfig, TextSplit, load_text_classification, load_text_regression
from tunebench.data.image_bundle import load_images
from tunebench.data.splits import cap, sample_indices, split_indices, split_off, subsample
from tunebench.data.token_bundle import load_token_data

REAL_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_real_data = pytest.mark.skipif(not REAL_DATA.is_dir(), reason="shared/data not available")

STRATA = [0] * 6 + [1] * 10 + [2] * 4


def test_stratified_split_picks_the_old_rows():
    assert split_indices(20, 5, 0, STRATA) == (
        [1, 2, 3, 4, 6, 7, 9, 10, 12, 13, 14, 15, 16, 17, 19],
        [0, 5, 8, 11, 18],
    )
    assert split_indices(20, 5, 7, STRATA)[1] == [4, 7, 13, 14, 16]
    assert sample_indices(20, 5, 7, STRATA) == [4, 7, 13, 14, 16]


def test_too_small_a_class_falls_back_to_the_old_plain_split():
    labels = [0, 0, 0, 1, 2, 2, 2, 2, 3, 3]  # class 1 has a single row: cannot stratify
    assert split_indices(10, 3, 1, labels) == ([0, 1, 3, 4, 5, 7, 8], [2, 6, 9])


def test_without_labels_the_old_ner_shuffle_and_sample():
    assert split_indices(15, 4, 0) == ([0, 2, 3, 4, 6, 7, 8, 11, 12, 13, 14], [1, 5, 9, 10])
    assert sample_indices(15, 6, 3) == [2, 3, 5, 8, 9, 13]


def test_split_subsample_and_cap_on_a_split():
    split = TextSplit([f"t{i}" for i in range(20)], STRATA, source="s")
    rest, taken = split_off(split, 5, 0, split.labels)
    assert taken.texts == ["t0", "t5", "t8", "t11", "t18"] and len(rest) == 15
    assert subsample(split, 5, 7, split.labels).labels == [0, 1, 1, 1, 2]  # stratified: 6 / 10 / 4
    assert cap(split, 20, 0, split.labels) is split
    assert cap(split, 5, 7, split.labels).texts == ["t4", "t7", "t13", "t14", "t16"]


def _csv(path: Path, header: list[str], rows: list[tuple]) -> str:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return str(path)


def test_text_classification_loader_selects_the_old_rows(tmp_path):
    rows = [(f"text {i:02d}", ["a", "b", "c"][i % 3] if i < 24 else "a") for i in range(30)]
    data = _csv(tmp_path / "syn.csv", ["text", "label"], rows)
    cfg = DataConfig(data=data, dev_fraction=0.2, test_fraction=0.1, train_size=10, eval_size=4, seed=5)
    b = load_text_classification(cfg)
    picked = {s: [int(t.split()[1]) for t in getattr(b, s).texts] for s in ("train", "dev", "test")}
    assert picked == {
        "train": [1, 3, 6, 8, 10, 15, 22, 23, 25, 27],
        "dev": [5, 14, 21, 29],
        "test": [9, 11, 13],
    }


def test_text_regression_loader_selects_the_old_rows(tmp_path):
    rows = [(f"s{i:02d}", f"t{i:02d}", f"{(i * 7) % 11 / 2:.1f}") for i in range(40)]
    data = _csv(tmp_path / "reg.csv", ["sentence1", "sentence2", "score"], rows)
    cfg = DataConfig(
        data=data,
        text_col="sentence1",
        text_pair_col="sentence2",
        label_col="score",
        dev_fraction=0.25,
        train_size=12,
        eval_size=5,
        seed=1,
    )
    b = load_text_regression(cfg)
    assert [int(t[1:]) for t in b.train.texts] == [0, 1, 5, 7, 12, 17, 18, 28, 32, 33, 34, 38]
    assert [int(t[1:]) for t in b.dev.texts] == [21, 22, 26, 27, 39]


def test_image_loader_selects_the_old_images(tmp_path):
    for c, n in (("cat", 7), ("dog", 5), ("fox", 4)):
        (tmp_path / c).mkdir()
        for i in range(n):
            Image.fromarray(np.full((8, 8, 3), 40 * i, np.uint8)).save(tmp_path / c / f"{c}{i}.png")
    cfg = DataConfig(
        data=str(tmp_path), dev_fraction=0.25, test_fraction=0.2, train_size=6, eval_size=3, seed=2
    )
    b = load_images(cfg)
    assert b.train.names == [
        "cat/cat2.png",
        "cat/cat3.png",
        "cat/cat5.png",
        "dog/dog3.png",
        "dog/dog4.png",
        "fox/fox0.png",
    ]
    assert b.dev.names == ["cat/cat1.png", "dog/dog1.png", "fox/fox1.png"]
    assert b.test.names == ["cat/cat0.png", "dog/dog0.png", "fox/fox3.png"]


def test_token_loader_selects_the_old_sentences(tmp_path):
    conll = tmp_path / "ner.conll"
    tag = lambda i: "B-PER" if i % 2 else "B-LOC"  # noqa: E731
    conll.write_text("".join(f"w{i} {tag(i)}\nx{i} O\n\n" for i in range(12)))
    b = load_token_data(DataConfig(data=str(conll), dev_fraction=0.25, train_size=4, eval_size=2, seed=0))
    assert [int(s[0][1:]) for s in b.train.tokens] == [0, 3, 7, 11]
    assert [int(s[0][1:]) for s in b.dev.tokens] == [8, 9]


@needs_real_data
@pytest.mark.parametrize(
    "kind, kw, fingerprint",
    [
        ("text", {"data": "sst2", "train_size": 2000}, "ec7aec93836ca327"),
        (
            "text",
            {"data": "sst2", "train_size": 2000, "eval_size": 300, "test_fraction": 0.1, "seed": 3},
            "f353ec735b1d44db",
        ),
        ("regression", {"data": "stsb", "train_size": 500, "eval_size": 200}, "27dcaa54d3e56e2b"),
        ("tokens", {"data": "conll2003", "train_size": 2000}, "71316be454692408"),
        (
            "tokens",
            {"data": "conll2003", "train_size": 2000, "eval_size": 300, "seed": 4},
            "c9106a37fa4814ed",
        ),
        ("images", {"data": "hymenoptera", "train_size": 100, "eval_size": 60}, "3b962b17387d55af"),
        (
            "images",
            {"data": "hymenoptera", "train_size": 80, "test_fraction": 0.2, "seed": 9},
            "2ccdd359f3611710",
        ),
    ],
)
def test_real_datasets_select_the_same_examples_as_before(kind, kw, fingerprint):
    load = {
        "text": load_text_classification,
        "regression": load_text_regression,
        "tokens": load_token_data,
        "images": load_images,
    }[kind]
    assert load(DataConfig(data_dir=str(REAL_DATA), **kw)).fingerprint() == fingerprint
