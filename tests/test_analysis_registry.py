"""The analysis package reads strategies and tasks from their registries: the learning curve's default
set and frozen baseline, the probe's dispatch, and the help texts that spell those sets out so that
`tunebench --help` stays fast."""

from __future__ import annotations

import argparse
import re

import pytest

from tunebench.analysis import commands, curve, curve_commands, probe_tasks
from tunebench.errors import TunebenchError
from tunebench.strategies import STRATEGIES, default_ladder
from tunebench.tasks import TASKS


def subparser(module, name: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    module.add_commands(p.add_subparsers(dest="command"))
    return p._subparsers._group_actions[0].choices[name]


def option_help(parser: argparse.ArgumentParser, flag: str) -> str:
    return next(a.help for a in parser._actions if flag in a.option_strings)


def test_curve_default_set_is_the_registry_curve_flag_in_ladder_order():
    names = curve.default_strategies()
    assert names == [n for n in curve.ladder_order() if STRATEGIES.get(n).curve] and names
    ladder = default_ladder()
    assert [n for n in names if n in ladder] == sorted((n for n in names if n in ladder), key=ladder.index)
    assert sorted(curve.ladder_order()) == sorted(STRATEGIES.names())


def test_curve_help_spells_out_the_registry_default():
    help_text = option_help(subparser(curve_commands, "curve"), "--strategies")
    assert f"(default: {' '.join(curve.default_strategies())})" in help_text
    assert curve_commands.DEFAULT_HELP == " ".join(curve.default_strategies())


def test_frozen_strategies_leave_the_backbone_unchanged():
    frozen = curve.frozen_strategies()
    for name, cls in STRATEGIES.items():
        assert (name in frozen) == (cls.kind != "gradient" or cls.uses_cached_features), name
    ladder = [n for n in default_ladder() if n in frozen]
    assert frozen[: len(ladder)] == ladder  # the ladder's frozen strategies come first: the baseline


def test_crossover_baseline_is_the_first_frozen_strategy_with_results():
    frozen = curve.frozen_strategies()
    tuned = next(n for n in default_ladder() if n not in frozen)
    pts = [
        {"strategy": s, "train_size": n, "test_mean": m}
        for s, ms in {frozen[1]: [0.7, 0.7], frozen[0]: [0.6, 0.6], tuned: [0.55, 0.8]}.items()
        for n, m in zip((100, 1000), ms)
    ]
    c = curve.crossover(pts, "test")
    assert c["frozen"] == frozen[0] and c["size"] == 1000 and c["margins"][-1]["best"] == tuned


def test_probe_help_lists_the_tasks_with_a_layer_probe(monkeypatch):
    monkeypatch.setattr("sys.argv", ["tunebench", "probe", "--help"])  # names are listed for help only
    help_text = option_help(subparser(commands, "probe"), "--task")
    listed = set(re.findall(r"[a-z]+(?:-[a-z]+)+", help_text.split("(")[0]))
    assert listed == {name for name, cls in TASKS.items() if cls.layer_probe is not None}


def test_probe_refuses_a_task_without_a_layer_probe():
    name = next((n for n, cls in TASKS.items() if cls.layer_probe is None), None)
    if name is None:
        pytest.skip("every registered task has a layer probe")
    task = TASKS.get(name)()
    with pytest.raises(TunebenchError, match=f"probe: not available for {name}"):
        probe_tasks.probe_task_layers(task, None, None, 8, None, {}, 0)
