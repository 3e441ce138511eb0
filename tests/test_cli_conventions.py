"""CLI conventions users know from git/pip/docker: global flags after the subcommand, JSON on stdout,
rich markup shown as text, and `--opt` messages that name what was given and what is accepted."""

from __future__ import annotations

import json

import pytest

from tunebench.cli import _global_flags_first, main
from tunebench.comparison import resolve_strategy
from tunebench.errors import TunebenchError


def test_quiet_and_verbose_are_accepted_after_the_subcommand():
    assert _global_flags_first(["compare", "--data", "x", "-q"]) == ["-q", "compare", "--data", "x"]
    assert _global_flags_first(["compare", "-v", "--", "-q"]) == ["-v", "compare", "--", "-q"]
    assert main(["strategies", "-q"]) == 0


def test_compare_json_prints_the_leaderboard_on_stdout(tiny_model, tiny_data, tmp_path, capsys):
    argv = ["compare", "--data", tiny_data["train"], "--dev", tiny_data["dev"], "--model", tiny_model]
    assert main([*argv, "--strategies", "features", "head", "--out", str(tmp_path), "--json", "-q"]) == 0
    rows = json.loads(capsys.readouterr().out)  # stdout is nothing but the JSON
    assert sorted(r["strategy"] for r in rows) == ["features", "head"]
    assert all(isinstance(r["dev_mean"], float) for r in rows)


@pytest.mark.parametrize("command", ["compare", "curve", "recommend"])
def test_help_lists_every_registered_dataset_and_task(command, monkeypatch, capsys):
    from tunebench.data.named import DATASETS
    from tunebench.tasks import TASKS

    monkeypatch.setattr("sys.argv", ["tunebench", command, "--help"])
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # argparse wraps at hyphens
    for name in TASKS.names():
        assert name in text, name
    if command != "recommend":
        for name in DATASETS:
            assert name in text, name


def test_every_flag_of_every_command_has_help_text():
    import argparse

    from tunebench.cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    bare = [
        f"{name} {action.option_strings or action.dest}"
        for name, parser in sub.choices.items()
        for action in parser._actions
        if not action.help and not isinstance(action, argparse._HelpAction)
    ]
    assert bare == []


def test_a_model_folder_without_a_tokenizer_is_refused(tiny_model, tmp_path):
    import shutil

    from tunebench.backbones import load_backbone

    for name in ("config.json", "model.safetensors"):
        shutil.copy(f"{tiny_model}/{name}", tmp_path / name)
    with pytest.raises(TunebenchError, match="no tokenizer in the folder"):
        load_backbone(str(tmp_path))


def test_strategy_descriptions_keep_their_brackets(capsys):
    main(["strategies"])
    out = capsys.readouterr().out
    assert "[u, v, |u-v|, u*v]" in " ".join(out.split())


def test_opt_messages_name_the_option_and_what_is_accepted():
    with pytest.raises(TunebenchError) as err:
        resolve_strategy("head", {"foo": "3"}, {}, 64)
    assert "--opt head.foo: unknown option; head takes none of its own" in str(err.value)
    assert "training settings: " in str(err.value) and "lr" in str(err.value)
    with pytest.raises(TunebenchError, match=r"^--opt head.lr=-1: must be > 0$"):
        resolve_strategy("head", {"lr": "-1"}, {}, 64)
    with pytest.raises(TunebenchError, match=r"^--opt full.epochs=two: expected an integer$"):
        resolve_strategy("full", {"epochs": "two"}, {}, 64)
    _, cfg = resolve_strategy("full", {"compile": "false", "lr": "3e-5"}, {}, 64)
    assert cfg.compile is False and cfg.lr == 3e-5
