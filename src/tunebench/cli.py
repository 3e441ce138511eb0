"""The `tunebench` command. Flags map onto the same dataclasses the Python API uses."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
import warnings

from .errors import TunebenchError

# Modules that add subcommands: each defines `add_commands(subparsers)` and sets
# `func=<callable(args)>` on its parsers with `set_defaults`, importing heavy libraries inside `func`.
PLUGIN_COMMANDS: list[str] = [
    "tunebench.analysis.commands",
    "tunebench.report.commands",
    "tunebench.analysis.curve_commands",
]

TRAIN_FLAGS = {
    "lr": float,
    "epochs": int,
    "batch_size": int,
    "eval_batch_size": int,
    "warmup_ratio": float,
    "weight_decay": float,
    "schedule": str,
    "patience": int,
    "dropout": float,
    "device": str,
    "precision": str,
}


def add_data_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data")
    g.add_argument(
        "--data", required=True, help="named dataset (sst2, imdb) or a train file (csv/tsv/jsonl/parquet)"
    )
    g.add_argument("--dev", help="dev file (default: a seeded stratified split of train)")
    g.add_argument("--test", help="test file")
    g.add_argument("--data-dir", help="where named datasets live (or set TUNEBENCH_DATA_DIR)")
    g.add_argument("--text-col")
    g.add_argument("--label-col")
    g.add_argument("--text-pair-col")
    g.add_argument("--train-size", type=int, help="seeded stratified subsample of train")
    g.add_argument("--eval-size", type=int, help="cap dev and test at this many examples (stratified)")
    g.add_argument("--test-fraction", type=float, default=0.0, help="split a test set off a single file")
    g.add_argument("--data-seed", type=int, default=0, help="seed of the splits and subsamples")


def add_ladder_args(c: argparse.ArgumentParser, default_strategies: str) -> None:
    """Model, strategies, seeds, output and training flags: shared by compare and curve."""
    c.add_argument(
        "--task", help="text-classification, text-regression, ... (default: the named dataset's task)"
    )
    c.add_argument(
        "--model",
        help="hub id, local directory, or 'minilm' (packaged default for text; images: efficientnet-lite0)",
    )
    c.add_argument("--strategies", nargs="+", help=f"names, or 'all' (default: {default_strategies})")
    c.add_argument("--seeds", nargs="+", type=int, default=[0])
    c.add_argument("--out", default="tunebench-out", help="output folder (its run store makes reruns free)")
    c.add_argument("--pooling", default="auto", choices=["auto", "mean", "cls"])
    c.add_argument("--max-length", type=int)
    c.add_argument(
        "--long-text",
        default="truncate",
        choices=["truncate", "chunk"],
        help="texts over the max length: cut them (default) or classify overlapping windows, mean of logits",
    )
    c.add_argument("--trust-remote-code", action="store_true")
    c.add_argument(
        "--drift",
        action="store_true",
        help="add each fine-tuning run's per-layer representation drift (linear CKA vs the pre-trained model)",
    )
    c.add_argument(
        "--opt",
        action="append",
        default=[],
        metavar="STRATEGY.KEY=VALUE",
        help="strategy option, e.g. last-k.k=4, lora.r=16, full.lr=3e-5 (repeatable)",
    )
    t = c.add_argument_group("training (all gradient strategies; overrides each strategy's default)")
    for name, typ in TRAIN_FLAGS.items():
        t.add_argument("--" + name.replace("_", "-"), type=typ)


def data_config(a, train_size: int | None = None):
    """The DataConfig that `add_data_args` flags describe (`train_size` overrides --train-size)."""
    from .data import DataConfig

    return DataConfig(
        data=a.data,
        dev=a.dev,
        test=a.test,
        data_dir=a.data_dir,
        text_col=a.text_col,
        label_col=a.label_col,
        text_pair_col=a.text_pair_col,
        train_size=a.train_size if train_size is None else train_size,
        eval_size=a.eval_size,
        test_fraction=a.test_fraction,
        seed=a.data_seed,
    )


def ladder_kwargs(a) -> dict:
    """`compare` keyword arguments from `add_ladder_args` flags."""
    return {
        "model": a.model,
        "strategies": a.strategies,
        "seeds": a.seeds,
        "out": a.out,
        "options": _parse_opts(a.opt),
        "train": {k: getattr(a, k) for k in TRAIN_FLAGS if getattr(a, k) is not None},
        "task": a.task,
        "pooling": a.pooling,
        "trust_remote_code": a.trust_remote_code,
        "max_length": a.max_length,
        "drift": a.drift,
        "long_text": a.long_text,
        "show": not a.quiet,
    }


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="tunebench", description="Freeze or fine-tune? Compare adaptation strategies."
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info lines")
    sub = p.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compare", help="run the strategy ladder and print a leaderboard")
    add_data_args(c)
    add_ladder_args(c, "features head last-k full lora bitfit")
    c.add_argument("--export", help="copy the best run's artifact here")

    s = sub.add_parser("strategies", help="list the strategies (for one task: which apply and why not)")
    s.add_argument("--task", help="show which strategies apply to this task and why the others don't")

    pr = sub.add_parser("predict", help="predict with an exported run")
    pr.add_argument("--model", required=True, help="directory written by compare --export")
    pr.add_argument("--data", required=True)
    pr.add_argument("--out", default="preds.csv")
    pr.add_argument("--text-col")
    pr.add_argument("--text-pair-col")
    pr.add_argument("--device", default="auto")

    for module in PLUGIN_COMMANDS:  # analysis commands live beside their code
        importlib.import_module(module).add_commands(sub)
    return p


def _parse_opts(items: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        strategy, dot, field = key.partition(".")
        if not sep or not dot or not field:
            raise TunebenchError(f"--opt {item}: expected STRATEGY.KEY=VALUE, e.g. last-k.k=4")
        out.setdefault(strategy, {})[field.replace("-", "_")] = value
    return out


def _cmd_compare(a) -> None:
    from .comparison import compare

    compare(data_config(a), export=a.export, **ladder_kwargs(a))


def _cmd_strategies(a) -> None:
    from rich.console import Console
    from rich.table import Table

    from .strategies import STRATEGIES
    from .tasks import TASKS, get_task

    task = get_task(a.task) if a.task else None
    ladder = task.default_ladder() if task else get_task("text-classification").default_ladder()
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
        row = [name + (" *" if name in ladder else ""), cls.summary, defaults]
        if task:
            row.append("no" if task.applies(name) else "yes")
        table.add_row(*row)
    console = Console()
    console.print(table)
    for name in STRATEGIES.names() if task else []:
        if task.applies(name):
            console.print(f"{name}: {task.applies(name)}", soft_wrap=True)


def _cmd_predict(a) -> None:
    from .prediction import predict

    rows = predict(a.model, a.data, a.out, a.text_col, a.text_pair_col, device=a.device)
    logging.getLogger("tunebench").info("wrote %d predictions to %s", len(rows), a.out)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s")
    warnings.filterwarnings("ignore", category=FutureWarning)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    from . import progress

    progress.set_enabled(not args.quiet and sys.stderr.isatty())
    try:
        builtin = {"compare": _cmd_compare, "strategies": _cmd_strategies, "predict": _cmd_predict}
        (builtin.get(args.command) or args.func)(args)
    except TunebenchError as err:
        print(f"tunebench: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `tunebench ... | head` closed the pipe: not an error of ours
        sys.stderr.close()
        return 141
    return 0


if __name__ == "__main__":
    sys.exit(main())
