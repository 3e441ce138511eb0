"""NER utilities: the CoNLL / JSON Lines token reader, IOB1->IOB2, label order, entity-level scores.

Expected values are worked out by hand in the comments, so a failing test says which rule broke.
"""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import pytest

from tunebench.data.conll import label_list, read_token_file, to_iob2
from tunebench.errors import TunebenchError
from tunebench.tasks.token_classification.metrics import entities, entity_scores

CONLL_DIR = Path(__file__).resolve().parents[2] / "shared" / "data" / "conll2003"


def write(path: Path, text: str) -> Path:
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, rows: list) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in rows))


# --- entities: the conlleval chunk rules ------------------------------------------------------------


def test_entities_iob2_basic():
    # B-PER I-PER O B-LOC -> PER over 0..2, LOC over 3..4
    assert entities(["B-PER", "I-PER", "O", "B-LOC"]) == [("PER", 0, 2), ("LOC", 3, 4)]


def test_entities_i_after_o_or_at_start_opens_a_chunk():
    # I-ORG at the start opens ORG 0..1; I-PER after O opens PER 2..4 (IOB1 reading / model slip)
    assert entities(["I-ORG", "O", "I-PER", "I-PER"]) == [("ORG", 0, 1), ("PER", 2, 4)]


def test_entities_type_change_and_adjacent_b():
    # B-PER I-LOC: the type changes, so LOC 1..2 is its own chunk.
    assert entities(["B-PER", "I-LOC"]) == [("PER", 0, 1), ("LOC", 1, 2)]
    # B-PER B-PER: two one-token chunks; B-PER I-PER B-PER I-PER: two two-token chunks.
    assert entities(["B-PER", "B-PER"]) == [("PER", 0, 1), ("PER", 1, 2)]
    assert entities(["B-PER", "I-PER", "B-PER", "I-PER"]) == [("PER", 0, 2), ("PER", 2, 4)]
    # IOB1: I-PER I-PER B-PER -> B after I of the same type starts a new chunk
    assert entities(["I-PER", "I-PER", "B-PER"]) == [("PER", 0, 2), ("PER", 2, 3)]


def test_entities_edges():
    assert entities([]) == []
    assert entities(["O", "O"]) == []
    # a chunk running to the end of the sentence is closed there
    assert entities(["O", "B-MISC", "I-MISC"]) == [("MISC", 1, 3)]
    # types with a dash inside survive (only the first two characters are the prefix)
    assert entities(["B-geo-loc", "I-geo-loc"]) == [("geo-loc", 0, 2)]


def test_entities_rejects_other_schemes():
    with pytest.raises(ValueError, match="'S-PER'"):
        entities(["S-PER"])
    with pytest.raises(ValueError, match="'PER'"):
        entities(["PER"])


# --- entity_scores ----------------------------------------------------------------------------------


def test_scores_partial_span_and_wrong_type_are_wrong():
    gold = [["B-PER", "I-PER", "O", "B-LOC", "O", "B-ORG"]]
    pred = [["B-PER", "O", "O", "B-LOC", "O", "B-MISC"]]
    # gold: PER 0..2, LOC 3..4, ORG 5..6 (3).  pred: PER 0..1 (partial), LOC 3..4, MISC 5..6 (3).
    # correct: LOC only -> P = 1/3, R = 1/3, F1 = 1/3
    s = entity_scores(gold, pred)
    assert s["precision"] == pytest.approx(1 / 3)
    assert s["recall"] == pytest.approx(1 / 3)
    assert s["f1"] == pytest.approx(1 / 3)
    # tokens: equal at 0, 2, 3, 4 -> 4/6
    assert s["token_accuracy"] == pytest.approx(4 / 6)
    pt = s["per_type"]
    # types from gold and pred: LOC, MISC, ORG, PER (sorted)
    assert list(pt) == ["LOC", "MISC", "ORG", "PER"]
    assert pt["LOC"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 1}
    # MISC only predicted: 0 of 1 right, no gold -> recall undefined -> 0.0, support 0
    assert pt["MISC"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # ORG never predicted: precision undefined -> 0.0
    assert pt["ORG"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert pt["PER"]["support"] == 1 and pt["PER"]["f1"] == 0.0


def test_scores_micro_over_sentences():
    gold = [["B-PER", "I-PER"], ["B-LOC", "O", "B-LOC"], ["O"]]
    pred = [["B-PER", "I-PER"], ["B-LOC", "O", "O"], ["B-ORG"]]
    # gold: PER(s0), LOC(s1 0..1), LOC(s1 2..3) = 3.  pred: PER(s0), LOC(s1 0..1), ORG(s2) = 3.
    # correct 2 -> P = 2/3, R = 2/3, F1 = 2/3.  The same span in another sentence is not a match.
    s = entity_scores(gold, pred)
    assert (s["precision"], s["recall"], s["f1"]) == pytest.approx((2 / 3, 2 / 3, 2 / 3))
    # LOC: 1 correct of 1 predicted, 2 gold -> P 1, R 0.5, F1 = 2*0.5/1.5 = 2/3
    assert s["per_type"]["LOC"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    # tokens: 2 + 2 (positions 0, 1) + 0 = 4 of 6
    assert s["token_accuracy"] == pytest.approx(4 / 6)


def test_scores_iob1_gold_matches_iob2_pred():
    # The same chunks written in IOB1 and IOB2 score perfectly at entity level,
    # but token accuracy compares raw tags: I-PER vs B-PER at position 0 differs -> 2/3.
    gold = [["I-PER", "I-PER", "O"]]
    pred = [["B-PER", "I-PER", "O"]]
    s = entity_scores(gold, pred)
    assert s["f1"] == 1.0
    assert s["token_accuracy"] == pytest.approx(2 / 3)


def test_scores_empty_predictions_do_not_divide_by_zero():
    # 2 gold entities, nothing predicted: P = 0/0 -> 0.0, R = 0/2 = 0, F1 = 0
    s = entity_scores([["B-PER", "O", "B-LOC"]], [["O", "O", "O"]])
    assert (s["precision"], s["recall"], s["f1"]) == (0.0, 0.0, 0.0)
    assert s["token_accuracy"] == pytest.approx(1 / 3)
    # no entities at all on either side, and no sentences at all: every score is 0.0
    s = entity_scores([["O"]], [["O"]])
    assert (s["precision"], s["recall"], s["f1"], s["per_type"]) == (0.0, 0.0, 0.0, {})
    assert s["token_accuracy"] == 1.0
    assert entity_scores([], [])["token_accuracy"] == 0.0


def test_scores_shape_mismatch():
    with pytest.raises(ValueError, match="gold has 2 sentences but pred has 1"):
        entity_scores([["O"], ["O"]], [["O"]])
    with pytest.raises(ValueError, match="sentence 1: gold has 2 tags but pred has 1"):
        entity_scores([["O"], ["O", "O"]], [["O"], ["O"]])


def random_tags(rng: random.Random, n: int) -> list[str]:
    # Deliberately ill-formed sequences (I- after O, type switches) to exercise every rule.
    return [rng.choice(["O", "O", "B-PER", "I-PER", "B-LOC", "I-LOC", "I-ORG"]) for _ in range(n)]


def test_matches_seqeval_on_random_sequences():
    seqeval = pytest.importorskip("seqeval.metrics")
    rng = random.Random(0)
    gold = [random_tags(rng, rng.randint(1, 12)) for _ in range(300)]
    pred = [random_tags(rng, len(g)) for g in gold]
    s = entity_scores(gold, pred)
    assert s["precision"] == pytest.approx(seqeval.precision_score(gold, pred))
    assert s["recall"] == pytest.approx(seqeval.recall_score(gold, pred))
    assert s["f1"] == pytest.approx(seqeval.f1_score(gold, pred))
    assert s["token_accuracy"] == pytest.approx(seqeval.accuracy_score(gold, pred))
    report = seqeval.classification_report(gold, pred, output_dict=True)
    for etype, row in s["per_type"].items():
        assert row["f1"] == pytest.approx(report[etype]["f1-score"])
        assert row["support"] == report[etype]["support"]


# --- to_iob2 / label_list ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("iob1", "iob2"),
    [
        # I- at the start and after O opens a chunk -> B-
        (["I-PER", "I-PER", "O", "I-LOC"], ["B-PER", "I-PER", "O", "B-LOC"]),
        # IOB1 B- separating two adjacent same-type chunks stays B-
        (["I-PER", "B-PER", "I-PER"], ["B-PER", "B-PER", "I-PER"]),
        # a type switch without O in between opens a chunk
        (["I-ORG", "I-LOC", "I-LOC"], ["B-ORG", "B-LOC", "I-LOC"]),
        # already IOB2: unchanged
        (["B-PER", "I-PER", "O", "B-LOC", "B-LOC"], ["B-PER", "I-PER", "O", "B-LOC", "B-LOC"]),
        ([], []),
        (["O"], ["O"]),
    ],
)
def test_to_iob2(iob1, iob2):
    assert to_iob2(iob1) == iob2
    # chunks are preserved and the conversion is idempotent
    assert entities(to_iob2(iob1)) == entities(iob1)
    assert to_iob2(iob2) == iob2


def test_to_iob2_rejects_iobes():
    with pytest.raises(ValueError, match="only IOB1/IOB2"):
        to_iob2(["E-PER"])


def test_label_list_order():
    tags = [["I-PER", "O", "B-MISC"], ["B-LOC", "I-LOC", "I-ORG"]]
    # O first, then types sorted, B before I. Both prefixes are listed for every type seen:
    # B-PER although only I-PER occurs, I-MISC although only B-MISC occurs.
    assert label_list(tags) == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    assert label_list([]) == ["O"]
    # input order does not matter
    assert label_list(list(reversed(tags))) == label_list(tags)


# --- read_token_file: good inputs -------------------------------------------------------------------

CONLL_TEXT = """-DOCSTART- -X- -X- O

EU NNP B-NP B-ORG
rejects VBZ B-VP O
German JJ B-NP B-MISC


Peter\tNNP\tB-NP\tB-PER
Blackburn NNP I-NP I-PER
-DOCSTART- -X- -X- O

BRUSSELS NNP B-NP B-LOC"""  # no final newline, two blank lines, DOCSTART with no blank before it


def test_read_conll_columns(tmp_path):
    toks, tags = read_token_file(write(tmp_path / "train.txt", CONLL_TEXT))
    assert toks == [["EU", "rejects", "German"], ["Peter", "Blackburn"], ["BRUSSELS"]]
    assert tags == [["B-ORG", "O", "B-MISC"], ["B-PER", "I-PER"], ["B-LOC"]]


def test_read_conll_gz_two_columns_crlf_bom(tmp_path):
    text = "\ufeffJohn B-PER\r\nlives O\r\n\r\n\r\nin O\r\nRome I-LOC\r\n"
    toks, tags = read_token_file(write(tmp_path / "dev.conll.gz", text))
    assert toks == [["John", "lives"], ["in", "Rome"]]
    assert tags == [["B-PER", "O"], ["O", "I-LOC"]]  # returned as written; to_iob2 is the caller's


def test_read_jsonl_and_gz(tmp_path):
    rows = [
        {"tokens": ["John", "lives"], "tags": ["B-PER", "O"]},
        {"tokens": [], "tags": []},  # skipped like a blank line
        {"id": "3", "tokens": ["in", "New York"], "ner_tags": ["O", "B-LOC"]},
    ]
    for name in ("a.jsonl", "a.jsonl.gz"):
        toks, tags = read_token_file(jsonl(tmp_path / name, rows))
        assert toks == [["John", "lives"], ["in", "New York"]]
        assert tags == [["B-PER", "O"], ["O", "B-LOC"]]


# --- read_token_file: bad inputs, one line naming file and line ------------------------------------


def bad(path: Path) -> str:
    with pytest.raises(TunebenchError) as info:
        read_token_file(path)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_missing_file_and_directory(tmp_path):
    assert f"file not found: {tmp_path / 'nope.txt'}" in bad(tmp_path / "nope.txt")
    assert "is a directory" in bad(tmp_path)


def test_one_column_line(tmp_path):
    path = write(tmp_path / "train.txt", "EU B-ORG\n\nrejects\n")
    assert bad(path) == (
        f"{path} line 3: expected 'token ... tag' (at least 2 columns), got 1 column; "
        "separate token and tag with a space or tab"
    )


def test_bad_tag_in_columns(tmp_path):
    path = write(tmp_path / "train.txt", "EU B-ORG\nrejects O\nGerman E-MISC\n")
    msg = bad(path)
    assert msg.startswith(f"{path} line 3: tag 'E-MISC' is not O, B-TYPE or I-TYPE")
    assert "only IOB1/IOB2" in msg
    # a file whose last column is not the tag
    path = write(tmp_path / "swapped.txt", "B-ORG EU\n")
    assert f"{path} line 1: tag 'EU'" in bad(path)


def test_empty_and_docstart_only_files(tmp_path):
    for name, text in [("empty.txt", ""), ("blank.txt", "\n\n  \n"), ("doc.txt", "-DOCSTART- -X- O\n\n")]:
        path = write(tmp_path / name, text)
        assert bad(path).startswith(f"{path}: no sentences found")
    assert bad(jsonl(tmp_path / "e.jsonl", [])).startswith(f"{tmp_path / 'e.jsonl'}: no sentences found")


def test_jsonl_errors(tmp_path):
    cases = [
        ({"tokens": ["a", "b"], "tags": ["O"]}, "2 tokens but 1 tags; give exactly one tag per token"),
        ({"tags": ["O"]}, 'missing "tokens"'),
        ({"tokens": ["a"]}, 'missing "tags"; each line needs "tokens" and "tags" (or "ner_tags") lists'),
        (
            {"tokens": ["a"], "ner_tags": [3]},
            '"ner_tags" holds integers (e.g. 3); give tag strings such as "B-PER"',
        ),
        ({"tokens": ["a"], "tags": ["B-"]}, "tag 'B-' is not O, B-TYPE or I-TYPE"),
        ({"tokens": "a b", "tags": ["O", "O"]}, '"tokens" must be a list of strings'),
        (["a", "O"], "expected a JSON object, got list"),
    ]
    good = {"tokens": ["ok"], "tags": ["O"]}
    for i, (row, fragment) in enumerate(cases):
        path = jsonl(tmp_path / f"c{i}.jsonl", [good, row])  # the bad row is on line 2
        msg = bad(path)
        assert msg.startswith(f"{path} line 2: "), msg
        assert fragment in msg, msg


def test_jsonl_malformed_json(tmp_path):
    path = write(tmp_path / "x.jsonl", '{"tokens": ["a"], "tags": ["O"]}\n\n{"tokens": ["a"],\n')
    msg = bad(path)
    assert msg.startswith(f"{path} line 3: malformed JSON")
    assert "each line must be one JSON object" in msg


def test_bad_gzip_and_bad_utf8(tmp_path):
    path = tmp_path / "x.txt.gz"
    path.write_bytes(b"EU B-ORG\n")
    assert "not a valid gzip file" in bad(path)
    path = tmp_path / "latin1.txt"
    path.write_bytes("EU B-ORG\n\nM\u00fcller B-PER\n".encode("latin-1"))
    assert bad(path).startswith(f"{path} line 3: byte b'\\xfc' is not valid UTF-8")


# --- real CoNLL-2003 --------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.skipif(not CONLL_DIR.is_dir(), reason=f"no CoNLL-2003 at {CONLL_DIR}")
@pytest.mark.parametrize(
    ("split", "n_sent", "n_tok", "n_ent"),
    [("train", 14041, 203621, 23499), ("valid", 3250, 51362, 5942), ("test", 3453, 46435, 5648)],
)
def test_real_conll2003_counts(split, n_sent, n_tok, n_ent):
    toks, tags = read_token_file(CONLL_DIR / f"{split}.txt.gz")
    assert len(toks) == n_sent
    assert sum(map(len, toks)) == n_tok
    assert sum(len(entities(t)) for t in tags) == n_ent
    # this copy is already IOB2, and its nine labels are the standard set
    assert all(to_iob2(t) == t for t in tags)
    assert label_list(tags) == ["O", "B-LOC", "I-LOC", "B-MISC", "I-MISC", "B-ORG", "I-ORG", "B-PER", "I-PER"]
