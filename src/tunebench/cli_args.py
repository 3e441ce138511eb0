"""Flags shared by `compare` and the commands that run ladders or read data (curve, probe, gap): they
map onto DataConfig and `compare`'s keyword arguments."""

from __future__ import annotations

import argparse
import sys

from .errors import TunebenchError

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
    "compile": bool,
    "class_weights": str,
    "label_smoothing": float,
    "sampler": str,
    "l2sp": float,
    "ewc": float,
    "reference": str,
    "replay": str,
    "replay_ratio": float,
}

TRAIN_HELP = {
    "lr": "peak learning rate (default: each strategy's published one, e.g. full 5e-5, lora 1e-3)",
    "epochs": "passes over the training data (default: the strategy's and task's)",
    "batch_size": "training batch size (default 32)",
    "eval_batch_size": "batch size of evaluation and of frozen forward passes (default 128)",
    "warmup_ratio": "share of the steps the learning rate warms up over (default 0.1)",
    "weight_decay": "AdamW weight decay, not on biases and LayerNorms (default 0.01)",
    "schedule": "linear (warmup + linear decay, default), slanted (ULMFiT) or constant",
    "patience": "stop after this many epochs without a better dev score (default 2)",
    "dropout": "dropout before the head (default 0.1)",
    "class_weights": "weigh the loss per class: none (default), balanced (n / (C * count); features too), or a "
    "JSON/CSV file of label -> weight",
    "label_smoothing": "label smoothing of the cross-entropy, e.g. 0.1 (default 0)",
    "sampler": "random (default) or balanced: draw every class equally often (with replacement)",
    "l2sp": "against forgetting: L2-SP penalty l2sp/2*|w-w0|^2 toward the weights training started from "
    "(all but the head), e.g. 0.01 (default 0)",
    "ewc": "against forgetting: EWC penalty ewc/2*sum F(w-w0)^2 over the body, F the diagonal Fisher of the "
    "pooled embedding on --reference, normalised to mean 1 (same scale as --l2sp), e.g. 10 (default 0)",
    "reference": "EWC's reference corpus: a text file (one text per line) or a CSV/TSV/JSONL/Parquet table "
    "with a text column (default: the training texts)",
    "replay": "against forgetting: train jointly on this corpus of original-domain text (file as for "
    "--reference), distilled toward the original model's embeddings",
    "replay_ratio": "replay texts per training example in a step, also the replay term's weight, in (0, 4] "
    "(default 0.5)",
    "device": "auto (CUDA when visible), cpu or cuda",
    "precision": "auto (bf16 autocast on CUDA and on CPUs with native bf16, else fp32), fp32 or bf16",
    "compile": "torch.compile the model (pays off on long GPU runs; the first steps compile)",
}


CHOICES = {"schedule": ["linear", "slanted", "constant"], "sampler": ["random", "balanced"]}
METAVARS = {"reference": "FILE", "replay": "FILE"}
TRUST_HELP = "run the model repository's own Python code (only for authors you trust)"


def help_requested() -> bool:
    """The registries of tasks and datasets import torch (seconds): help texts list their names only
    when help is being shown, so the commands themselves start fast."""
    return bool({"-h", "--help"} & set(sys.argv[1:]))


def data_help() -> str:
    text = (
        "a train file (csv/tsv/jsonl/parquet; images: a folder or .zip), a hub dataset id, or a named dataset"
    )
    if not help_requested():
        return text
    from .data.named import DATASETS  # help only: see help_requested

    return text + ": " + ", ".join(f"{n} ({ds.task})" for n, ds in sorted(DATASETS.items()))


def add_data_args(p: argparse.ArgumentParser, tasks: bool = False) -> None:
    """The data flags; `tasks`: also --tasks (several datasets, one task each), and --data is optional."""
    g = p.add_argument_group("data")
    g.add_argument("--data", required=not tasks, help=data_help())
    if tasks:
        g.add_argument(
            "--tasks",
            metavar="A,B,C",
            help="several datasets (names or files, or a JSON list of {data, task, ...}) sharing one backbone: "
            "the multitask strategy (one body, a head each) beside each strategy run per task",
        )
    g.add_argument("--dev", help="dev file (default: a seeded stratified split of train)")
    g.add_argument("--test", help="test file")
    g.add_argument("--data-dir", help="where named datasets live (or set TUNEBENCH_DATA_DIR)")
    g.add_argument("--text-col", help="column holding the text (default: found by name: text, sentence, ...)")
    g.add_argument(
        "--label-col", help="column holding the label or score (default: found by name: label, ...)"
    )
    g.add_argument("--text-pair-col", help="column of the second text of a pair (sentence-pair tasks)")
    g.add_argument("--train-size", type=int, help="seeded stratified subsample of train")
    g.add_argument("--eval-size", type=int, help="cap dev and test at this many examples (stratified)")
    g.add_argument("--test-fraction", type=float, default=0.0, help="split a test set off a single file")
    g.add_argument("--data-seed", type=int, default=0, help="seed of the splits and subsamples")
    g.add_argument(
        "--long-tail",
        type=float,
        metavar="RHO",
        help="make train long-tailed (a benchmark of imbalance): class i of C keeps n_max*RHO^(-i/(C-1)) "
        "rows, seeded (Cao et al. 2019); before --train-size",
    )
    g.add_argument(
        "--feature-cols",
        metavar="A,B:cat,C:num",
        help="numeric and categorical columns read beside the text (kind inferred from train unless given): "
        "standardised / one-hot or embedded, fitted on train; a fusion head reads them, `metadata` uses them alone",
    )


def add_ladder_args(
    c: argparse.ArgumentParser, default_strategies: str, tasks: list[str] | None = None
) -> None:
    """Model, strategies, seeds, output and training flags: shared by compare and curve. `tasks`: the
    registered task names, listed in the help (given when help is shown)."""
    names = ", ".join(tasks) if tasks else "text-classification, token-classification, ..."
    c.add_argument("--task", help=f"{names} (default: the named dataset's task, else text-classification)")
    c.add_argument(
        "--model",
        help="hub id, local directory, or 'minilm' (packaged default for text; images: efficientnet-lite0)",
    )
    c.add_argument("--strategies", nargs="+", help=f"names, or 'all' (default: {default_strategies})")
    c.add_argument(
        "--seeds", nargs="+", type=int, default=[0], help="run every strategy once per seed (default 0)"
    )
    c.add_argument("--out", default="tunebench-out", help="output folder (its run store makes reruns free)")
    c.add_argument(
        "--pooling",
        default="auto",
        choices=["auto", "mean", "cls"],
        help="how a text becomes one vector: auto (what the model was trained for; else mean), mean or [CLS]",
    )
    c.add_argument("--max-length", type=int, help="longest input in tokens (default: the model's own limit)")
    c.add_argument(
        "--long-text",
        default="truncate",
        choices=["truncate", "chunk"],
        help="texts over the max length: cut them (default) or classify overlapping windows, mean of logits",
    )
    c.add_argument("--trust-remote-code", action="store_true", help=TRUST_HELP)
    c.add_argument(
        "--select",
        default="auto",
        choices=["auto", "accuracy", "macro-f1"],
        help="dev metric that picks epochs, C and the winner (classification): auto = macro-F1 when the "
        "training classes are imbalanced 3:1 or more, else accuracy",
    )
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
        flag, why = "--" + name.replace("_", "-"), TRAIN_HELP.get(name)
        if typ is bool:  # a switch: absent = the strategy's default
            t.add_argument(flag, action="store_true", default=None, help=why)
        elif name in CHOICES:
            t.add_argument(flag, choices=CHOICES[name], help=why)
        else:
            t.add_argument(flag, type=typ, help=why, metavar=METAVARS.get(name))


def add_search_args(c: argparse.ArgumentParser) -> None:
    """Search (Optuna) and scale-out flags of `compare`."""
    g = c.add_argument_group("search and workers (Optuna)")
    g.add_argument(
        "--search",
        type=int,
        metavar="N",
        help="tune each gradient strategy with N trials (TPE, seeded; the default configuration first), "
        "chosen on dev; the best then runs on every --seeds",
    )
    g.add_argument(
        "--search-budget",
        type=float,
        metavar="MINUTES",
        help="or search each strategy for this many minutes of training (with --search: whichever ends first)",
    )
    g.add_argument(
        "--pruner",
        default="median",
        choices=["median", "halving", "none"],
        help="stop search trials whose dev score after an epoch is below the median of earlier trials "
        "(default), by successive halving, or never",
    )
    g.add_argument(
        "--storage",
        metavar="URL",
        help="database of runs and trials (default: OUT/runs.sqlite); postgresql://USER@HOST/DB lets the same "
        "command on many machines share one comparison",
    )
    g.add_argument("--workers", type=int, default=1, help="start N worker processes on this machine (CPU)")
    g.add_argument("--devices", nargs="+", metavar="DEVICE", help="one worker per device, e.g. cuda:0 cuda:1")
    c.add_argument(
        "--track",
        nargs="+",
        choices=["mlflow", "trackio"],
        help="log each run (settings, per-epoch metrics, artifact) to MLflow (MLFLOW_TRACKING_URI, else "
        "OUT/mlflow.db) and/or trackio; pip install 'tunebench[mlflow]' / 'tunebench[trackio]'",
    )


def search_kwargs(a) -> dict:
    """`compare` keyword arguments from `add_search_args` flags."""
    return {
        "search": a.search,
        "search_budget": a.search_budget,
        "pruner": a.pruner,
        "storage": a.storage,
        "workers": a.workers,
        "devices": a.devices,
        "track": a.track,
    }


def data_config(a, train_size: int | None = None):
    """The DataConfig that `add_data_args` flags describe (`train_size` overrides --train-size)."""
    from .data import DataConfig  # heavy (scikit-learn, pyarrow): loaded when a command runs, not for --help

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
        long_tail=a.long_tail,
        feature_cols=getattr(a, "feature_cols", None),
    )


def data_common(a) -> dict:
    """The data flags that apply to every dataset of --tasks (those set)."""
    common = {
        "data_dir": a.data_dir,
        "train_size": a.train_size,
        "eval_size": a.eval_size,
        "test_fraction": a.test_fraction,
        "seed": a.data_seed,
    }
    return {k: v for k, v in common.items() if v is not None}


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
        "select": a.select,
        "show": True,  # -q drops progress and info lines, not the result
    }


def _parse_opts(items: list[str]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for item in items:
        key, sep, value = item.partition("=")
        strategy, dot, field = key.partition(".")
        if not sep or not dot or not field:
            raise TunebenchError(f"--opt {item}: expected STRATEGY.KEY=VALUE, e.g. last-k.k=4")
        out.setdefault(strategy, {})[field.replace("-", "_")] = value
    return out


ADAPT_OPTIONS = ("objective", "steps", "epochs", "lr", "batch_size", "max_length")


def add_adapt_args(c: argparse.ArgumentParser, prefix: str) -> None:
    """Continued pre-training flags: `tunebench adapt`'s, and compare's with prefix `dapt-`."""
    c.add_argument(
        f"--{prefix}objective",
        default="auto",
        choices=["auto", "mlm", "tsdae"],
        help="mlm (whole-word masking) or tsdae (denoising auto-encoder, for embedding models); auto: "
        "mlm when the checkpoint has an MLM head, else tsdae for sentence-embedding models",
    )
    c.add_argument(f"--{prefix}steps", type=int, help="training steps (default 1000)")
    c.add_argument(f"--{prefix}epochs", type=int, help="or passes over the corpus")
    c.add_argument(f"--{prefix}lr", type=float, help="learning rate (default: mlm 5e-5, tsdae 3e-5)")
    c.add_argument(f"--{prefix}batch-size", type=int, default=16, help="sequences per step (default 16)")
    c.add_argument(
        f"--{prefix}max-length", type=int, help="tokens per sequence (default: the model's own limit)"
    )


def adapt_options(a: argparse.Namespace, prefix: str) -> dict:
    """adapt()'s keywords from the flags `add_adapt_args` added (unset ones left to adapt's defaults)."""
    values = {name: getattr(a, prefix + name) for name in ADAPT_OPTIONS}
    return {k: v for k, v in values.items() if v is not None}
