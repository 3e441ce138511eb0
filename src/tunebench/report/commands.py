"""CLI plugin: `tunebench report OUT_DIR [--html FILE]` and `tunebench recommend [OUT_DIR] ...`."""

from __future__ import annotations

import argparse
import json

from ..cli_args import help_requested
from ..errors import TunebenchError
from .inputs import DEVICES, GAPS, REFERENCE_PARAMS_M


def add_commands(sub) -> None:
    r = sub.add_parser(
        "report", help="diagnostics + a self-contained HTML report of a compare's output folder"
    )
    r.add_argument("out_dir", metavar="OUT_DIR", help="the folder a compare wrote (--out)")
    r.add_argument("--html", metavar="FILE", help="where to write the report (default OUT_DIR/report.html)")
    r.set_defaults(func=_cmd_report)

    c = sub.add_parser(
        "recommend",
        help="which strategies to try first: from your situation (--train-size ...) or from a compare (OUT_DIR)",
        description="Before training: give --train-size (and task, device, budget, domain gap). "
        "After a compare: give its OUT_DIR; the flags then override what the records imply.",
    )
    c.add_argument("out_dir", nargs="?", metavar="OUT_DIR", help="a compare's output folder (after training)")
    c.add_argument("--train-size", type=int, help="number of labelled training examples")
    c.add_argument(
        "--task",
        help=f"{_task_names()} or text-pair (default text-classification)",
    )
    c.add_argument(
        "--device",
        choices=DEVICES,
        help="where training would run (default cpu; after a compare: where it ran)",
    )
    c.add_argument("--budget-minutes", type=float, help="wall-clock minutes you can spend per strategy run")
    c.add_argument("--gap", choices=GAPS, help="domain gap to the pretraining text")
    c.add_argument("--memory-gb", type=float, help="memory available for training (GPU memory on cuda)")
    c.add_argument(
        "--model-params-m",
        type=float,
        help=f"backbone size in millions (default {REFERENCE_PARAMS_M:g}: MiniLM-L6)",
    )
    c.add_argument("--json", action="store_true", help="print JSON instead of text")
    c.set_defaults(func=_cmd_recommend)


def _cmd_report(a: argparse.Namespace) -> None:
    # heavy: the registries load torch/transformers only when the command runs
    from .html import write_html
    from .leaderboard_checks import diagnose_output
    from .output import load_output

    out = load_output(a.out_dir)
    for w in diagnose_output(out.records, out.rows, out.out_dir, out.facts):
        print(w)
    path = write_html(a.out_dir, a.html)
    print(f"wrote {path}")


def _rule_inputs(a: argparse.Namespace) -> dict:
    names = {"model_params_m": "params_m"}
    keys = ("train_size", "task", "device", "budget_minutes", "gap", "memory_gb", "model_params_m")
    return {names.get(k, k): getattr(a, k) for k in keys if getattr(a, k) is not None}


def _cmd_recommend(a: argparse.Namespace) -> None:
    # heavy: the registries load torch/transformers only when the command runs
    from .output import load_output
    from .recommend import analyse, format_advice, format_analysis
    from .rules import advise

    inputs = _rule_inputs(a)
    if a.out_dir:
        out = load_output(a.out_dir)
        result = analyse(out.records, out.rows, out.metric, out.facts, **inputs)
        print(json.dumps(result.as_dict(), indent=1, default=str) if a.json else format_analysis(result))
        return
    if a.train_size is None:
        raise TunebenchError(
            "recommend: give OUT_DIR (a compare's output folder) or --train-size N (before any training)"
        )
    advice = advise(**inputs)
    if a.json:
        print(json.dumps(advice.as_dict(), indent=1))
        return
    given = [f"{k}={v}" for k, v in advice.inputs.items() if k in inputs]
    assumed = [f"{k}={v}" for k, v in advice.inputs.items() if k not in inputs and v is not None]
    print(f"Inputs: {', '.join(given)}" + (f" · assumed: {', '.join(assumed)}" if assumed else ""))
    print(format_advice(advice))


def _task_names() -> str:
    """The registered tasks for the help (listed only when help is shown: see help_requested)."""
    if not help_requested():
        return "a task name (`tunebench strategies` lists them)"
    from ..tasks import TASKS  # help only: the registry imports torch

    return ", ".join(TASKS.names())
