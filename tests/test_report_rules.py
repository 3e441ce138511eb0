"""The rule of thumb read from the registries: the advice is pinned to what the name-table version of
report/recommend.py gave for the same inputs, the rule ids the strategies use exist, and the candidates
and --task choices come from the registries."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import pytest

from tunebench.cli import main
from tunebench.report.recommend import format_advice
from tunebench.report.rules import PAIRS, RULES, advise, candidates, task_choices
from tunebench.strategies import STRATEGIES, Strategy
from tunebench.strategies.base import Hints
from tunebench.tasks import TASKS

# (inputs, [(strategy, score, minutes rounded to 3 places) in ranked order], how many are tried first),
# computed with the code before the rules moved into the strategies' `hints`
PINNED = [
    (
        dict(train_size=50, device="cpu", budget_minutes=10),
        [
            ("features", 4.5, 0.062),
            ("head", 3.5, 0.062),
            ("last-k", 1.5, 0.077),
            ("lora", 0.5, 0.1),
            ("adapters", 0.0, 0.095),
            ("bitfit", -0.5, 0.093),
            ("llrd", -1.0, 0.094),
            ("gradual", -1.0, 0.105),
            ("full", -2.0, 0.094),
        ],
        3,
    ),
    (
        dict(train_size=300, gap="large", budget_minutes=5),
        [
            ("features", 1.5, 0.078),
            ("last-k", 1.5, 0.143),
            ("full", 1.0, 0.243),
            ("llrd", 1.0, 0.243),
            ("head", 0.5, 0.078),
            ("lora", 0.5, 0.278),
            ("gradual", 0.0, 0.244),
            ("adapters", 0.0, 0.252),
            ("bitfit", -0.5, 0.239),
        ],
        3,
    ),
    (
        dict(train_size=5000, task="text-pair"),
        [
            ("last-k", 3.5, 1.494),
            ("full", 3.0, 3.154),
            ("lora", 2.5, 3.749),
            ("llrd", 1.5, 3.154),
            ("gradual", 0.5, 2.991),
            ("adapters", 0.0, 3.303),
            ("bitfit", -0.5, 3.085),
            ("features", -1.5, 0.425),
            ("head", -1.5, 0.425),
        ],
        3,
    ),
    (
        dict(train_size=20000, device="cuda", memory_gb=0.5),
        [
            ("lora", 5.0, 0.498),
            ("last-k", 3.0, 0.197),
            ("bitfit", 2.0, 0.409),
            ("full", 0.5, 0.418),
            ("features", 0.0, 0.085),
            ("head", 0.0, 0.085),
            ("adapters", 0.0, 0.438),
            ("llrd", -0.5, 0.418),
            ("gradual", -1.0, 0.396),
        ],
        3,
    ),
    (
        dict(train_size=2000, task="token-classification", gap="small"),
        [
            ("features", 2.5, 0.19),
            ("head", 1.5, 0.19),
            ("last-k", 1.5, 0.598),
            ("full", 1.0, 1.262),
            ("gradual", 0.5, 1.197),
            ("llrd", 0.5, 1.262),
            ("lora", 0.5, 1.5),
            ("adapters", 0.0, 1.321),
            ("bitfit", -0.5, 1.234),
        ],
        3,
    ),
    (
        dict(train_size=100000, budget_minutes=1),
        [
            ("features", -9.5, 6.7),
            ("last-k", -7.5, 26.957),
            ("lora", -7.5, 72.07),
            ("full", -8.0, 60.165),
            ("llrd", -9.0, 60.165),
            ("head", -9.5, 6.7),
            ("gradual", -10.0, 56.325),
            ("adapters", -10.0, 63.141),
            ("bitfit", -10.5, 58.781),
        ],
        1,  # nothing fits: the cheapest alone
    ),
]


@pytest.mark.parametrize("inputs, ranked, n_first", PINNED, ids=lambda v: str(v)[:60])
def test_advice_matches_the_name_table_version(inputs, ranked, n_first):
    advice = advise(**inputs)
    got = [(p.strategy, p.score, round(p.minutes, 3)) for p in advice.try_first + advice.later]
    assert got == ranked
    assert [p.strategy for p in advice.try_first] == [s for s, _, _ in ranked[:n_first]]


def test_reasons_and_notes_match_the_name_table_version():
    few = advise(50, device="cpu", budget_minutes=10).try_first[0]
    assert [(r.input, r.value, r.effect) for r in few.reasons] == [
        ("train_size", "50", 3),
        ("task", "text-classification", 1),
        ("device", "cpu", 0.5),
    ]
    assert few.reasons[0].source == "Tunstall et al. 2022, SetFit"
    tight = advise(20000, device="cuda", memory_gb=0.5).try_first[0]
    assert [(r.input, r.value, r.effect, r.source) for r in tight.reasons] == [
        ("train_size", "20000", 2, "Peters, Ruder & Smith 2019, 'To Tune or Not to Tune?'"),
        ("gap", "medium", 1, ""),
        ("memory_gb", "0.5", 2, "Hu et al. 2021; Ben Zaken et al. 2022"),
    ]
    assert tight.reasons[2].text.startswith(
        "tight memory: full fine-tuning of 22.7M parameters needs ~0.36 GB"
    )
    (note,) = advise(5000, task=PAIRS).notes
    assert (note.input, note.value) == ("task", PAIRS) and note.text.startswith(
        "run it as `compare --text-pair-col"
    )
    over = advise(100000, budget_minutes=1)
    assert over.later[-1].reasons[-1].effect == -10 and "nothing fits" in over.notes[0].text
    assert json.loads(json.dumps(over.as_dict()))["later"][-1]["reasons"][-1]["effect"] == -10


def test_every_advice_key_of_a_strategy_is_a_rule():
    ids = [r.id for r in RULES]
    assert len(ids) == len(set(ids))
    for name, advice in candidates().items():
        assert set(advice) <= set(ids), f"{name}: unknown rule ids {set(advice) - set(ids)}"


def test_candidates_are_the_strategies_with_hints_in_registry_order():
    assert list(candidates()) == [name for name, cls in STRATEGIES.items() if cls.hints is not None]
    advice = advise(300)
    assert {p.strategy for p in advice.try_first + advice.later} == set(candidates())


def test_a_new_strategy_with_hints_joins_the_advice_without_other_edits(monkeypatch):
    @dataclass
    class Tiny(Strategy):
        hints: ClassVar[Hints] = Hints(train_rate=1000.0, advice={"labels<1k": 5, "gap=medium": 1})
        train_defaults: ClassVar[dict] = {"epochs": 1}

    Tiny.name = "tiny-test-strategy"
    monkeypatch.setitem(STRATEGIES._items, Tiny.name, Tiny)
    advice = advise(300)
    top = advice.try_first[0]
    assert top.strategy == Tiny.name and top.score == 6
    assert [(r.input, r.effect) for r in top.reasons] == [("train_size", 5), ("gap", 1)]
    assert Tiny.name in format_advice(advice)


def test_task_choices_come_from_the_task_registry():
    assert task_choices() == [*TASKS.names(), PAIRS]
    for task in TASKS.names():  # every registered task is accepted; one without a rule gets no task reason
        advice = advise(300, task=task)
        has_rule = any(r.id == f"task={task}" for r in RULES)
        reasons = [r for p in advice.try_first + advice.later for r in p.reasons if r.input == "task"]
        assert bool(reasons) == has_rule, task


def test_cli_recommend_accepts_every_registered_task(capsys):
    for task in task_choices():
        assert main(["-q", "recommend", "--train-size", "300", "--task", task]) == 0
        assert "Try first:" in capsys.readouterr().out
    assert main(["-q", "recommend", "--train-size", "300", "--task", "no-such-task"]) == 2
    err = capsys.readouterr().err
    assert "--task no-such-task: choose from" in err and "token-classification" in err
