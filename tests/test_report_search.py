"""The report's Search section, on a hand-made output folder whose results.json carries trials."""

from __future__ import annotations

import json

import pytest
from test_report import XSS, record

from tunebench.report.html import render
from tunebench.report.output import load_output

BEST_LR = 3.2123e-4
TRIALS = [
    {"number": 0, "state": "complete", "value": 0.80, "params": {"lr": 1e-4, "epochs": 3, "r": 8},
     "epochs": 3, "key": "k0", "default": True},
    {"number": 1, "state": "pruned", "value": 0.61, "params": {"lr": 2.5e-5, "epochs": 4, "r": 4},
     "epochs": 1, "key": "k1", "default": False},
    {"number": 2, "state": "fail", "value": None, "params": {"lr": 4e-4, "epochs": 2, "r": 16},
     "epochs": 0, "key": None, "default": False},
    {"number": 3, "state": "complete", "value": 0.86, "params": {"lr": BEST_LR, "epochs": 4, "r": 16},
     "epochs": 4, "key": "k3", "default": False},
]  # fmt: skip


def folder(tmp_path, **extra):
    run = {"examples_per_second": 50.0, "artifact_bytes": 4096}
    searched = record("lora", search={"trials": 4, "best": 3, "params": TRIALS[3]["params"]}, **run)
    data = {"metric": "accuracy", "leaderboard": [], "runs": [record("full", **run), searched], **extra}
    (tmp_path / "results.json").write_text(json.dumps(data))
    return tmp_path


def search_html(html: str) -> str:
    return html.split("id='search'")[1].split("</section>")[0]


def test_search_section_plots_and_summarises_the_trials(tmp_path):
    html = render(folder(tmp_path, search={"lora": TRIALS}))
    section = search_html(html)
    assert section.count("<svg") == 1 and "lora: 4 trials, 1 failed (not plotted)" in section
    assert "<td>4</td><td>2</td><td>1</td><td>1</td>" in section  # trials, complete, pruned, failed
    assert "<td>0.8600</td><td>0.8000</td>" in section and "lr 0.000321 · epochs 4 · r 16" in section
    assert section.count('class="point"') == 2 and section.count('class="hollow"') == 1
    assert ">best<" in section and ">default<" in section and ">ep 1<" in section
    assert "the search never sees test" in section
    assert html.index("id='learning-curves'") < html.index("id='search'")


def test_one_plot_per_strategy_and_names_are_escaped(tmp_path):
    html = render(folder(tmp_path, search={"lora": TRIALS, XSS: TRIALS[:2]}))
    section = search_html(html)
    assert section.count("<svg") == 2
    assert XSS not in html and "&lt;script&gt;alert(1)&lt;/script&gt;: 2 trials" in section


@pytest.mark.parametrize("search", [None, [1, 2], {"lora": "x"}, {"lora": [1, 2]}, {}])
def test_no_or_malformed_search_has_no_section(tmp_path, search):
    extra = {} if search is None else {"search": search}
    assert load_output(folder(tmp_path, **extra)).search == {}
    assert "id='search'" not in render(tmp_path)


def test_partly_malformed_trials_do_not_crash(tmp_path):
    odd = [1, {"state": "complete", "value": "x", "params": []}, {"state": "pruned", "value": float("nan")}]
    section = search_html(render(folder(tmp_path, search={"lora": odd + TRIALS[:1]})))
    assert section.count("<svg") == 1 and "lora: 3 trials, 2 unscored (not plotted)" in section
