"""SQuAD-format reading (tunebench.data.squad): flattening questions in file order, the split by article,
and each bad input's one-line message."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from tunebench.data.squad import read_squad, split_by_article
from tunebench.errors import TunebenchError


def squad_json(articles: int = 3, questions: int = 2) -> dict:
    data = []
    for a in range(articles):
        context = f"Article {a} says the answer is blue{a}."
        qas = [
            {
                "id": f"a{a}q{q}",
                "question": f"What colour {q}?",
                "answers": [{"text": f"blue{a}", "answer_start": context.index(f"blue{a}")}],
            }
            for q in range(questions)
        ]
        data.append({"title": f"T{a}", "paragraphs": [{"context": context, "qas": qas}]})
    return {"version": "1.1", "data": data}


def write(path: Path, obj) -> Path:
    text = obj if isinstance(obj, str) else json.dumps(obj)
    if path.name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", ["squad.json", "squad.json.gz"])
def test_read_squad_flattens_questions_in_file_order(tmp_path, name):
    examples = read_squad(write(tmp_path / name, squad_json()))
    assert [ex["id"] for ex in examples] == ["a0q0", "a0q1", "a1q0", "a1q1", "a2q0", "a2q1"]
    assert [ex["article"] for ex in examples] == [0, 0, 1, 1, 2, 2]
    first = examples[2]
    assert first["title"] == "T1" and first["question"] == "What colour 0?"
    assert first["answers"] == [{"text": "blue1", "answer_start": 29}]
    assert first["context"][29:34] == "blue1"


def test_split_by_article_is_deterministic_and_by_article(tmp_path):
    examples = read_squad(write(tmp_path / "s.json", squad_json(articles=4)))
    train, rest = split_by_article(examples, 3)
    assert {ex["article"] for ex in train} == {0, 1, 2} and {ex["article"] for ex in rest} == {3}
    assert split_by_article(examples, 3) == (train, rest)
    with pytest.raises(TunebenchError, match="train_articles=4 but the data has 4 articles"):
        split_by_article(examples, 4)


def bad(tmp_path: Path, obj) -> str:
    with pytest.raises(TunebenchError) as err:
        read_squad(write(tmp_path / "bad.json", obj))
    message = str(err.value)
    assert "\n" not in message and "bad.json" in message
    return message


def test_read_squad_missing_file_names_the_path(tmp_path):
    with pytest.raises(TunebenchError, match="file not found: .*nope.json"):
        read_squad(tmp_path / "nope.json")


def test_read_squad_bad_input_messages(tmp_path):
    assert "not valid JSON (line 1" in bad(tmp_path, "{not json")
    assert "no top-level 'data' list" in bad(tmp_path, {"version": "1.1"})
    assert "no top-level 'data' list" in bad(tmp_path, [1, 2])

    obj = squad_json()
    del obj["data"][1]["paragraphs"][0]["context"]
    assert "article 1 paragraph 0: missing key 'context'" in bad(tmp_path, obj)

    obj = squad_json()
    del obj["data"][2]["paragraphs"][0]["qas"][1]["question"]
    assert "article 2 question id 'a2q1': missing key 'question'" in bad(tmp_path, obj)

    obj = squad_json()
    obj["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = "7"
    assert "question id 'a0q0': 'answer_start' must be int, got str" in bad(tmp_path, obj)

    obj = squad_json()
    obj["data"][1]["paragraphs"][0]["qas"][0]["answers"] = []
    assert "question id 'a1q0': no answers" in bad(tmp_path, obj)

    obj = squad_json()
    obj["data"][1]["paragraphs"][0]["qas"][1]["id"] = "a1q0"
    assert "question id 'a1q0' appears twice" in bad(tmp_path, obj)


def test_read_squad_answer_offset_mismatch_names_id_and_offset(tmp_path):
    obj = squad_json()
    obj["data"][1]["paragraphs"][0]["qas"][1]["answers"][0]["answer_start"] = 5
    message = bad(tmp_path, obj)
    assert "question id 'a1q1': answer 'blue1' not found at answer_start 5" in message
    assert "occurs at offset 29; fix answer_start" in message

    obj = squad_json()
    obj["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["text"] = "green"
    assert "does not occur in the context" in bad(tmp_path, obj)
