"""The `tunebench` command. Flags map onto the same dataclasses the Python API uses."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings

from . import progress
from ._version import __version__
from .analysis import commands as analysis_commands
from .analysis import curve_commands
from .cli_args import (
    adapt_options,
    add_adapt_args,
    add_data_args,
    add_ladder_args,
    add_search_args,
    data_common,
    data_config,
    help_requested,
    ladder_kwargs,
    search_kwargs,
)
from .errors import TunebenchError
from .report import commands as report_commands

# Modules that add subcommands: each defines `add_commands(subparsers)` and sets `func=<callable(args)>`
# on its parsers with `set_defaults`; like the commands below, they import torch-heavy code inside `func`.
PLUGIN_COMMANDS = [analysis_commands, report_commands, curve_commands]


def task_names() -> list[str] | None:
    """The registered tasks for help texts (None unless help is shown: the registry imports torch)."""
    if not help_requested():
        return None
    from .tasks import TASKS  # help only

    return TASKS.names()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tunebench", description="Freeze or fine-tune? Compare adaptation strategies."
    )
    p.add_argument("--version", action="version", version=f"tunebench {__version__}")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info lines")
    p.add_argument("-v", "--verbose", action="store_true", help="debug lines too")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compare", help="run the strategy ladder and print a leaderboard")
    add_data_args(c, tasks=True)
    add_ladder_args(c, "features head last-k full lora bitfit", task_names())
    c.add_argument(
        "--export",
        help="write the best run here: a model folder plain transformers/peft load, with a model card",
    )
    c.add_argument(
        "--json", action="store_true", help="print the leaderboard as JSON on stdout (logs stay on stderr)"
    )
    add_search_args(c)
    c.add_argument(
        "--dapt-corpus",
        help="also adapt the backbone to this unlabelled text (tunebench adapt) and run the ladder on both",
    )
    add_adapt_args(c, prefix="dapt-")

    s = sub.add_parser("strategies", help="list the strategies (for one task: which apply and why not)")
    s.add_argument("--task", help="show which strategies apply to this task and why the others don't")

    pr = sub.add_parser("predict", help="predict with an exported run")
    pr.add_argument("--model", required=True, help="directory written by compare --export")
    pr.add_argument("--data", required=True, help="file to predict (its label column, if any, is ignored)")
    pr.add_argument("--out", default="preds.csv", help="CSV of predictions (default preds.csv)")
    pr.add_argument("--text-col", help="column holding the text (default: found by name)")
    pr.add_argument("--text-pair-col", help="column of the second text of a pair")
    pr.add_argument("--device", default="auto", help="auto (CUDA when visible), cpu, cuda or cuda:N")
    pr.add_argument("--task", help="which task of a multitask export (compare --tasks) to predict")

    d = sub.add_parser("distill", help="a trained model teaches a smaller student (soft targets)")
    d.add_argument("--teacher", required=True, help="run folder (OUT/runs/KEY) or export of the teacher")
    d.add_argument(
        "--student", required=True, help="MODEL:Ln (the bottom n blocks, e.g. minilm:L3) or any model"
    )
    add_data_args(d)
    d.add_argument("--unlabeled", help="unlabelled texts (a table with a text column) the teacher labels too")
    d.add_argument("--unlabeled-col", help="the unlabelled file's text column (default: found by name)")
    d.add_argument("--temperature", type=float, default=2.0, help="softmax temperature T of the soft targets")
    d.add_argument(
        "--alpha", type=float, default=0.5, help="weight of the soft loss; 1 - alpha on the labels"
    )
    d.add_argument("--loss", default="kl", choices=["kl", "mse"], help="kl: soft targets at T; mse: logits")
    d.add_argument(
        "--student-strategy", default="full", help="how the student trains: full, or head (cheapest)"
    )
    d.add_argument("--epochs", type=int, help="training epochs (default: the strategy's)")
    d.add_argument("--lr", type=float, help="learning rate (default: the strategy's)")
    d.add_argument("--batch-size", type=int, help="training batch size (default 32)")
    d.add_argument("--seed", type=int, default=0, help="training seed")
    d.add_argument("--out", default="tunebench-distill", help="output folder (run store, distill.md)")
    d.add_argument("--export", help="copy the student's run here (tunebench predict --model DIR)")

    ad = sub.add_parser(
        "adapt", help="continue pre-training the backbone on unlabelled in-domain text (DAPT)"
    )
    ad.add_argument("--model", default="minilm", help="hub id, local directory, or 'minilm' (default)")
    ad.add_argument(
        "--corpus", required=True, help="unlabelled text: a .txt (one document per line) or a table"
    )
    add_adapt_args(ad, prefix="")
    ad.add_argument("--corpus-col", help="the corpus table's text column (default: found by name)")
    ad.add_argument("--seed", type=int, default=0, help="masking / noise and order seed")
    ad.add_argument("--device", default="auto", help="auto (CUDA when visible), cpu, cuda or cuda:N")
    ad.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"], help="as compare's")
    ad.add_argument("--out", required=True, help="the adapted model folder (then: compare --model DIR)")

    for module in PLUGIN_COMMANDS:  # analysis commands live beside their code
        module.add_commands(sub)
    return p


def _cmd_compare(a) -> int:
    from .api import compare  # heavy (torch, transformers, peft): loaded when the command runs

    kwargs = {**ladder_kwargs(a), **search_kwargs(a)}
    if a.tasks or not a.data:
        return _compare_tasks(a, kwargs)
    if a.dapt_corpus:
        return _compare_dapt(a, kwargs)
    if a.json:
        kwargs["show"] = False  # stdout is the JSON's
    rows = compare(data_config(a), export=a.export, **kwargs)
    if a.json:
        print(json.dumps(rows, indent=1, default=str))
    failed = [r for r in rows if r["status"] != "ok"]
    for r in failed:  # at the end, where it is read: which strategy failed and why
        print(f"tunebench: {r['strategy']}: {r['status']}", file=sys.stderr)
    if rows and len(failed) == len(rows) and not any(r["seeds"] for r in rows):
        print(f"tunebench: error: every run failed ({len(rows)} strategies)", file=sys.stderr)
        return 1
    return 0


def _compare_tasks(a, kwargs: dict) -> int:
    """compare --tasks: several datasets sharing one backbone (multitask_compare.py)."""
    from .api import compare_tasks  # heavy (torch, transformers, peft): loaded when the command runs

    if not a.tasks:
        raise TunebenchError(
            "give --data FILE_OR_NAME, or --tasks A,B,C for several tasks sharing one backbone"
        )
    if a.data:
        raise TunebenchError("--data and --tasks: give one of them (--tasks lists every dataset)")
    common = data_common(a)
    keep = (
        "model",
        "strategies",
        "seeds",
        "out",
        "options",
        "train",
        "pooling",
        "trust_remote_code",
        "max_length",
    )
    rows = compare_tasks(a.tasks, common, export=a.export, show=not a.json, **{k: kwargs[k] for k in keep})
    if a.json:
        print(json.dumps(rows, indent=1, default=str))
    return 0 if any(r["status"] == "ok" for r in rows) else 1


def _compare_dapt(a, kwargs: dict) -> int:
    """compare --dapt-corpus: the ladder on the original and the adapted backbone (dapt_compare.py)."""
    from .api import compare_dapt  # heavy (torch, transformers, peft): loaded when the command runs

    if a.export or a.json:
        raise TunebenchError("--dapt-corpus: --export and --json are not offered; export from OUT/adapted")
    kwargs.pop("show", None)
    result = compare_dapt(data_config(a), a.dapt_corpus, adapt_options=adapt_options(a, "dapt_"), **kwargs)
    return 0 if any(r["adapted"] and r["adapted"]["status"] == "ok" for r in result["rows"]) else 1


def _cmd_adapt(a) -> None:
    from .adapt import adapt  # heavy (torch, transformers): loaded when the command runs

    options = adapt_options(a, "")
    adapt(
        a.corpus,
        a.model,
        a.out,
        text_col=a.corpus_col,
        seed=a.seed,
        device=a.device,
        precision=a.precision,
        **options,
    )


def _cmd_distill(a) -> None:
    from .distill import distill  # heavy (torch, transformers, peft): loaded when the command runs

    train = {k: getattr(a, k) for k in ("epochs", "lr", "batch_size") if getattr(a, k) is not None}
    distill(
        a.teacher,
        a.student,
        data_config(a),
        unlabeled=a.unlabeled,
        text_col=a.unlabeled_col,
        temperature=a.temperature,
        alpha=a.alpha,
        loss=a.loss,
        strategy=a.student_strategy,
        train=train,
        seed=a.seed,
        out=a.out,
        export=a.export,
    )


def _cmd_strategies(a) -> None:
    # heavy (torch, transformers, peft): loaded when the command runs
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from .comparison import default_strategies
    from .strategies import STRATEGIES
    from .tasks import TASKS, get_task

    task = get_task(a.task) if a.task else None
    ladder = default_strategies(task or get_task("text-classification"))
    title = (
        f"strategies for {a.task}" if task else f"tunebench strategies · tasks: {', '.join(TASKS.names())}"
    )
    table = Table(title=title + " (* = in the default ladder)")
    for col in ("name", "what trains", "defaults") + (("applies",) if task else ()):
        table.add_column(col)
    for name, cls in STRATEGIES.items():
        train, settings = cls.train_defaults, cls().settings()
        if task:  # this task's schedule (gradient strategies) and options
            train = task.train_defaults(name, train) if cls.kind == "gradient" else train
            settings = cls.from_options(task.strategy_options.get(name, {})).settings()
        defaults = ", ".join(f"{k}={v}" for k, v in {**train, **settings}.items())
        row = [escape(name + (" *" if name in ladder else "")), escape(cls.summary), escape(defaults)]
        if task:
            row.append("no" if task.applies(cls) else "yes")
        table.add_row(*row)
    console = Console()
    console.print(table)
    for name, cls in STRATEGIES.items() if task else []:
        if task.applies(cls):
            console.print(escape(f"{name}: {task.applies(cls)}"), soft_wrap=True)


def _cmd_predict(a) -> None:
    from .prediction import predict  # heavy (torch, transformers): loaded when the command runs

    rows = predict(a.model, a.data, a.out, a.text_col, a.text_pair_col, device=a.device, task=a.task)
    logging.getLogger("tunebench").info("wrote %d predictions to %s", len(rows), a.out)


GLOBAL_FLAGS = ("-q", "--quiet", "-v", "--verbose")


def _global_flags_first(argv: list[str]) -> list[str]:
    """`tunebench compare ... -q` means `tunebench -q compare ...` (as git, pip and docker read it)."""
    end = argv.index("--") if "--" in argv else len(argv)
    flags = [a for a in argv[:end] if a in GLOBAL_FLAGS]
    return flags + [a for a in argv[:end] if a not in GLOBAL_FLAGS] + argv[end:]


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(_global_flags_first(sys.argv[1:] if argv is None else list(argv)))
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    if args.verbose and not args.quiet:  # our debug lines, not every library's
        logging.getLogger("tunebench").setLevel(logging.DEBUG)
    warnings.filterwarnings("ignore", category=FutureWarning)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    progress.set_enabled(not args.quiet and sys.stderr.isatty())
    if args.quiet:  # the hub's and transformers' bars ("Loading weights") too; read when they are imported
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    try:
        builtin = {
            "compare": _cmd_compare,
            "strategies": _cmd_strategies,
            "predict": _cmd_predict,
            "distill": _cmd_distill,
            "adapt": _cmd_adapt,
        }
        code = (builtin.get(args.command) or args.func)(args)
    except TunebenchError as err:
        print(f"tunebench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `tunebench ... | head` closed the pipe: not an error of ours
        sys.stderr.close()
        return 141
    return code if isinstance(code, int) else 0


if __name__ == "__main__":
    sys.exit(main())
