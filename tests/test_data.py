"""Data loading: readers, named datasets, text-classification bundles and every bad-input message."""

from __future__ import annotations

import csv
import gzip
import json
import sys
import types
from pathlib import Path

import pytest

from tunebench.data import (
    DATASETS,
    DataBundle,
    DataConfig,
    NamedDataset,
    TextSplit,
    dataset_names,
    load_table,
    load_text_classification,
    read_table,
    register_dataset,
)
from tunebench.errors import TunebenchError

ROWS = [
    {"sentence": 'a "quoted" word, with comma', "label": "pos"},
    {"sentence": "plain text ", "label": "neg"},
    {"sentence": "it 's fine", "label": "pos"},
]


def write(path: Path, text: str | bytes) -> Path:
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


def write_rows(path: Path, rows: list[dict]) -> Path:
    """Write `rows` in the format `path`'s extension asks for."""
    name = path.name.removesuffix(".gz")
    cols = list(rows[0])
    if name.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table({c: [r[c] for r in rows] for c in cols}), path)
        return path
    if name.endswith(".jsonl"):
        return write(path, "".join(json.dumps(r) + "\n" for r in rows))
    if name.endswith(".json"):
        return write(path, json.dumps(rows))
    if name.endswith((".tsv", ".txt")):
        lines = ["\t".join(cols)] + ["\t".join(str(r[c]) for c in cols) for r in rows]
        return write(path, "\n".join(lines) + "\n")
    with open(path.with_suffix(".tmp"), "w", newline="") as f:
        w = csv.DictWriter(f, cols)
        w.writeheader()
        w.writerows(rows)
    return write(path, path.with_suffix(".tmp").read_bytes())


def synthetic(n: int = 100, classes: tuple = ("neg", "pos"), weights: tuple = (0.3, 0.7)) -> list[dict]:
    rows, counts = [], [round(n * w) for w in weights]
    for cls, k in zip(classes, counts, strict=True):
        rows += [{"text": f"{cls} example number {i}", "label": cls} for i in range(k)]
    return rows


def error(cfg_or_path, match: str) -> str:
    """Run the loader (or the reader), assert a one-line TunebenchError containing `match`."""
    with pytest.raises(TunebenchError) as info:
        if isinstance(cfg_or_path, DataConfig):
            load_text_classification(cfg_or_path)
        else:
            load_table(cfg_or_path)
    msg = str(info.value)
    assert "\n" not in msg, msg
    assert match in msg, msg
    return msg


# ----------------------------------------------------------------------------- readers


@pytest.mark.parametrize(
    "name",
    ["t.csv", "t.tsv", "t.txt", "t.jsonl", "t.json", "t.parquet", "t.csv.gz", "t.tsv.gz", "t.jsonl.gz"],
)
def test_every_format_reads_the_same_columns(tmp_path, name):
    rows = [r for r in ROWS if "\t" not in r["sentence"]]
    columns, n = read_table(write_rows(tmp_path / name, rows))
    assert n == 3
    assert columns == {"sentence": [r["sentence"] for r in rows], "label": [r["label"] for r in rows]}


def test_tsv_keeps_quotes_and_text_verbatim_and_strips_cr(tmp_path):
    p = write(tmp_path / "a.tsv", '\ufeffsentence\tlabel\r\n"hi" she said \t1\r\n\r\nit\'s "\t0\r\n')
    t = load_table(p)
    assert t.columns == {"sentence": ['"hi" she said ', "it's \""], "label": ["1", "0"]}
    assert t.where(1) == "row 2 (line 4)"  # blank line skipped, line numbers stay physical


def test_csv_multiline_field_keeps_line_numbers(tmp_path):
    p = write(tmp_path / "a.csv", 'text,label\n"two\nlines",1\nok,0\n')
    t = load_table(p)
    assert t.columns["text"] == ["two\nlines", "ok"]
    assert t.where(1) == "row 2 (line 4)"


@pytest.mark.parametrize(
    "name, content, match",
    [
        ("x.xlsx", "a", "unsupported file type .xlsx"),
        ("x", "a", "unsupported file type (none)"),
        ("x.csv", "", "the file is empty"),
        (
            "x.jsonl",
            '{"text": "a", "label": 1}\n{"text": "b" "label": 1}\n',
            "x.jsonl line 2: malformed JSON",
        ),
        ("x.jsonl", "[1, 2]\n", "line 1: expected a JSON object"),
        ("x.json", '{\n"data": 1\n}', "JSON Lines or one array"),
        ("x.tsv", "text\tlabel\na\tb\tc\n", "row 1 (line 2): 3 fields but the header has 2"),
        ("x.csv", "text,label\nhello, world,1\n", "put such fields in double quotes"),
        ("x.csv", "text,text\na,b\n", "names column 'text' twice"),
        ("x.csv.gz", b"not gzip at all", "not a valid gzip file"),
        ("x.parquet", b"PAR1 garbage", "not a readable Parquet file"),
    ],
)
def test_reader_errors(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    error(path, match)


def test_undecodable_bytes_name_offset_and_line(tmp_path):
    p = write(tmp_path / "x.csv", "text,label\ncaf\xe9,1\n".encode("latin-1"))
    msg = error(p, "byte 14 (line 2) is not valid UTF-8")
    assert "save the file as UTF-8" in msg
    p = write(tmp_path / "x.tsv.gz", "text\tlabel\nok\t1\ncaf\xe9\t1\n".encode("latin-1"))
    error(p, "byte 19 of the decompressed data (line 3)")


def test_missing_file_says_cwd_for_relative_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    msg = error(Path("nope/train.csv"), "file not found: nope/train.csv")
    assert str(tmp_path) in msg
    error(tmp_path / "nope.csv", f"file not found: {tmp_path / 'nope.csv'}")
    (tmp_path / "d.csv").mkdir()
    error(tmp_path / "d.csv", "is a directory")


# ----------------------------------------------------------------------------- text classification


def test_single_file_gets_seeded_stratified_dev_and_test(tmp_path):
    path = write_rows(tmp_path / "reviews.csv", synthetic(200))
    cfg = DataConfig(str(path), dev_fraction=0.1, test_fraction=0.2, seed=3)
    b = load_text_classification(cfg)
    assert b.name == "reviews" and b.label_names == ["neg", "pos"]
    assert (len(b.train), len(b.dev), len(b.test)) == (140, 20, 40)
    assert b.dev.labels.count(1) == 14 and b.test.labels.count(1) == 28  # 70 % pos kept
    all_texts = b.train.texts + b.dev.texts + b.test.texts
    assert sorted(all_texts) == sorted(r["text"] for r in synthetic(200))
    assert b.describe() == "reviews: train 140 · dev 20 · test 40 · 2 classes"
    assert isinstance(b.train, TextSplit) and b.train.source == str(path)


def test_same_seed_same_bundle_and_fingerprint(tmp_path):
    path = write_rows(tmp_path / "d.jsonl", synthetic(120))
    make = lambda seed: load_text_classification(DataConfig(str(path), train_size=50, seed=seed))  # noqa: E731
    a, b, c = make(0), make(0), make(1)
    assert a == b and a.fingerprint() == b.fingerprint()
    assert len(a.fingerprint()) == 16 and int(a.fingerprint(), 16) >= 0
    assert a.train.texts != c.train.texts and a.fingerprint() != c.fingerprint()
    changed = DataBundle(a.name, a.train, a.dev, a.test, ["x", "y"])
    assert changed.fingerprint() != a.fingerprint()


def test_integer_labels_sort_numerically_and_match_across_formats(tmp_path):
    rows = [{"text": f"t{i}", "label": lab} for i, lab in enumerate([10, 2, 1] * 4)]
    train = write_rows(tmp_path / "train.jsonl", rows)  # JSON ints
    dev = write_rows(tmp_path / "dev.csv", rows[:3])  # strings "10", "2", "1"
    b = load_text_classification(DataConfig(str(train), dev=str(dev)))
    assert b.label_names == ["1", "2", "10"]
    assert b.dev.labels == [2, 1, 0] and b.test is None and len(b.train) == 12


def test_explicit_files_columns_pairs_and_eval_cap(tmp_path):
    rows = [
        {"id": i, "premise": f"p{i}", "hypothesis": f"h{i}", "y": ["a", "b", "c"][i % 3]} for i in range(60)
    ]
    for name in ("train.tsv", "dev.tsv", "test.parquet"):
        write_rows(tmp_path / name, rows)
    cfg = DataConfig(
        str(tmp_path / "train.tsv"),
        dev=str(tmp_path / "dev.tsv"),
        test=str(tmp_path / "test.parquet"),
        text_col="premise",
        label_col="y",
        text_pair_col="hypothesis",
        eval_size=30,
        train_size=45,
    )
    b = load_text_classification(cfg)
    assert (len(b.train), len(b.dev), len(b.test)) == (45, 30, 30)
    assert [b.dev.labels.count(k) for k in range(3)] == [10, 10, 10]
    assert all(p == "h" + t[1:] for t, p in zip(b.dev.texts, b.dev.text_pairs, strict=True))


@pytest.mark.parametrize(
    "cols, text, label",
    [(("review", "class"), "review", "class"), (("Content", "Target"), "Content", "Target")],
)
def test_auto_detects_columns(tmp_path, cols, text, label):
    rows = [{cols[0]: f"x{i}", cols[1]: i % 2} for i in range(20)]
    b = load_text_classification(DataConfig(str(write_rows(tmp_path / "a.csv", rows))))
    assert len(b.train) + len(b.dev) == 20 and b.label_names == ["0", "1"]


def bad_rows(tmp_path, name: str, rows: list[dict]) -> DataConfig:
    return DataConfig(str(write_rows(tmp_path / name, rows)))


def test_text_errors(tmp_path):
    good = synthetic(20)
    error(bad_rows(tmp_path, "a.csv", [{"body": "x", "y": 1}]), "no text column (looked for sentence")
    msg = error(bad_rows(tmp_path, "b.csv", [{"text": "x", "y": 1}]), "columns are: text, y")
    assert "--label-col NAME" in msg
    cfg = DataConfig(str(write_rows(tmp_path / "c.csv", good)), text_col="body")
    error(cfg, "c.csv: no column 'body'; columns are: text, label; choose one with --text-col NAME")
    error(
        bad_rows(tmp_path, "d.csv", good[:3] + [{"text": "  ", "label": "pos"}]),
        "d.csv row 4 (line 5): empty text",
    )
    error(bad_rows(tmp_path, "e.jsonl", good[:2] + [{"text": "x"}]), "e.jsonl row 3 (line 3): missing label")
    error(bad_rows(tmp_path, "f.csv", [{"text": "x", "label": " "}] + good), "row 1 (line 2): missing label")
    msg = error(bad_rows(tmp_path, "g.csv", [{"text": "x", "label": "pos"}] * 5), "every row has label 'pos'")
    assert "at least 2 classes" in msg
    error(bad_rows(tmp_path, "h.jsonl", [{"text": "x", "label": 0.5}] + good), "use --task text-regression")
    write(tmp_path / "i.csv", "text,label\n")
    error(DataConfig(str(tmp_path / "i.csv")), "no data rows")


def test_unseen_dev_label_names_file_row_and_label(tmp_path):
    train = write_rows(tmp_path / "train.csv", synthetic(20))
    dev = write_rows(tmp_path / "dev.csv", synthetic(4) + [{"text": "meh", "label": "neutral"}])
    msg = error(
        DataConfig(str(train), dev=str(dev)),
        "dev.csv row 5 (line 6): label 'neutral' does not occur in train",
    )
    assert "neg, pos" in msg and "fix the label or add examples" in msg


def test_size_errors(tmp_path):
    path = str(write_rows(tmp_path / "a.csv", synthetic(100)))
    msg = error(DataConfig(path, train_size=500), "train_size 500 is larger than the 90 train rows")
    assert "after taking out dev/test" in msg
    error(DataConfig(path, dev_fraction=0.0), "no dev set; give a dev file with --dev FILE")
    error(DataConfig(str(write_rows(tmp_path / "b.csv", synthetic(4))), dev_fraction=0.1), "gives 0 dev rows")


def test_tiny_classes_fall_back_to_a_plain_split(tmp_path):
    rows = synthetic(30) + [{"text": "rare", "label": "zzz"}]
    b = load_text_classification(DataConfig(str(write_rows(tmp_path / "a.csv", rows)), dev_fraction=0.2))
    assert b.label_names == ["neg", "pos", "zzz"] and len(b.train) + len(b.dev) == 31


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"train_size": 0}, "train_size (--train-size) must be a positive integer, got 0"),
        ({"eval_size": 2.5}, "eval_size (--eval-size) must be a positive integer"),
        ({"dev_fraction": 1.0}, "dev_fraction (--dev-fraction) must be a number in [0, 1)"),
        ({"test_fraction": -0.1}, "test_fraction (--test-fraction) must be"),
        ({"dev_fraction": 0.5, "test_fraction": 0.5}, "dev_fraction + test_fraction must be below 1"),
        ({"seed": "1"}, "seed (--seed) must be an integer"),
        ({"text_col": "a", "label_col": "a"}, "must differ"),
        ({"data": " "}, "data needs a dataset name or a file path"),
        ({"dev": ""}, "dev (--dev) must be a non-empty path"),
    ],
)
def test_config_validation(kwargs, match):
    kwargs = {"data": "sst2", **kwargs}
    with pytest.raises(TunebenchError) as info:
        DataConfig(**kwargs)
    assert match in str(info.value)


# ----------------------------------------------------------------------------- named datasets and the hub


@pytest.fixture
def fake_data_dir(tmp_path):
    """A data dir laid out like shared/data, with a few rows per file."""
    d = tmp_path / "data"
    (d / "sst2").mkdir(parents=True)
    (d / "imdb").mkdir()
    sst = [{"sentence": f's{i} "q" ', "label": i % 2} for i in range(20)]
    write_rows(d / "sst2" / "train.tsv.gz", sst)
    write_rows(d / "sst2" / "dev.tsv", sst[:4])
    write_rows(d / "sst2" / "test_labeled.tsv", sst[:6])
    imdb = [{"id": f"train/{i}", "label": i % 2, "rating": 1, "text": f"review {i}"} for i in range(40)]
    write_rows(d / "imdb" / "train.jsonl.gz", imdb)
    write_rows(d / "imdb" / "test.jsonl.gz", imdb[:10])
    return d


def test_named_datasets_from_data_dir_and_env(fake_data_dir, monkeypatch):
    b = load_text_classification(DataConfig("sst2", data_dir=str(fake_data_dir)))
    assert b.describe() == "sst2: train 20 · dev 4 · test 6 · 2 classes"
    assert b.train.texts[0] == 's0 "q" '
    monkeypatch.setenv("TUNEBENCH_DATA_DIR", str(fake_data_dir))
    b = load_text_classification(DataConfig("imdb", dev_fraction=0.25))
    assert b.describe() == "imdb: train 30 · dev 10 · test 10 · 2 classes"


def test_named_dataset_not_found_says_where_it_looked(tmp_path):
    msg = error(DataConfig("imdb", data_dir=str(tmp_path)), f"looked in: {tmp_path}")
    assert "imdb/train.jsonl.gz" in msg and "--data-dir DIR" in msg and "TUNEBENCH_DATA_DIR" in msg


@pytest.mark.parametrize("name", dataset_names("text-classification"))
def test_registered_text_datasets_are_well_formed(name):
    ds = DATASETS[name]
    assert "train" in ds.files and ds.description
    assert set(ds.columns) <= {"text", "label", "text_pair"}


def test_register_a_new_dataset(fake_data_dir):
    register_dataset(
        NamedDataset("tiny", "text-classification", {"train": "sst2/dev.tsv", "dev": "sst2/dev.tsv"})
    )
    try:
        b = load_text_classification(DataConfig("tiny", data_dir=str(fake_data_dir)))
        assert b.name == "tiny" and len(b.train) == 4
        with pytest.raises(ValueError):
            register_dataset(NamedDataset("tiny", "text-classification", {"train": "x"}))
    finally:
        del DATASETS["tiny"]


def test_unknown_name_and_missing_hub(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    msg = error(DataConfig("sst3"), f"no file sst3 (relative to {tmp_path})")
    assert msg.startswith("unknown dataset 'sst3': not a registered name (") and "sst2" in msg
    error(DataConfig("train.csv"), "file not found: train.csv")
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` fail
    error(DataConfig("stanfordnlp/sst2"), "the `datasets` package is not installed")


def test_hub_dataset_through_a_fake_datasets_module(monkeypatch):
    class Split:
        def __init__(self, cols):
            self.cols = cols

        def __len__(self):
            return len(next(iter(self.cols.values())))

        def to_dict(self):
            return self.cols

    def load_dataset(hub_id):
        if hub_id == "me/offline":
            raise ConnectionError("Couldn't reach the Hub\nmore detail")
        train = {"sentence": [f"s{i}" for i in range(10)], "label": [i % 2 for i in range(10)]}
        return {
            "train": Split(train),
            "validation": Split({"sentence": ["a", "b"], "label": [0, 1]}),
            "test": Split({"sentence": ["c"], "label": [-1]}),  # GLUE: unlabeled
        }

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    b = load_text_classification(DataConfig("glue/sst2"))
    assert b.describe() == "sst2: train 10 · dev 2 · 2 classes" and b.test is None
    error(
        DataConfig("me/offline"),
        "could not load 'me/offline' from the Hugging Face Hub (Couldn't reach the Hub)",
    )
