"""`tunebench curve` and `tunebench forgetting`: the CLI plugin (listed in `cli.PLUGIN_COMMANDS`).

Heavy imports (torch, transformers, scikit-learn) happen inside the commands, so `tunebench --help`
stays fast.
"""

from __future__ import annotations

from ..cli import TRAIN_FLAGS, _add_data_args, _parse_opts


def add_commands(sub) -> None:
    c = sub.add_parser(
        "curve",
        help="learning curve: each strategy's metric over training-set sizes; where fine-tuning overtakes features",
        description="One compare per size into the same --out (finished runs are reused). Writes "
        "OUT/curve.json and OUT/curve.png and prints the size at which the best fine-tuning strategy "
        "overtakes frozen features (or head).",
    )
    _add_data_args(c)
    c.add_argument(
        "--sizes", nargs="+", type=int, required=True, help="training-set sizes, e.g. 100 300 1000"
    )
    c.add_argument("--strategies", nargs="+", help="names, or 'all' (default: features head lora full)")
    c.add_argument("--seeds", nargs="+", type=int, default=[0])
    c.add_argument("--out", default="tunebench-out", help="output dir, shared with compare (its run store)")
    c.add_argument("--task", default="text-classification")
    c.add_argument(
        "--model", default="minilm", help="hub id, local directory, or 'minilm' (packaged default)"
    )
    c.add_argument("--pooling", default="auto", choices=["auto", "mean", "cls"])
    c.add_argument("--max-length", type=int)
    c.add_argument("--trust-remote-code", action="store_true")
    c.add_argument("--drift", action="store_true", help="also measure representation drift (linear CKA)")
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
    c.set_defaults(func=_cmd_curve)

    f = sub.add_parser(
        "forgetting",
        help="does fine-tuning cost the backbone elsewhere? a frozen probe on another dataset, before vs after",
        description="A frozen probe (mean-pooled last layer + logistic regression, C on dev) on --data with "
        "the original backbone and with the fine-tuned one from --run (a run folder or an export). "
        "--data stsb: Spearman of cosine similarities on STS-B instead (no training).",
    )
    f.add_argument("--run", required=True, help="an exported run (compare --export DIR) or OUT/runs/KEY")
    _add_data_args(f)
    f.add_argument("--out", help="add the result to OUT/forgetting.json")
    f.add_argument("--batch-size", type=int, default=128, help="batch size of the forward passes")
    f.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    f.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"])
    f.add_argument("--seed", type=int, default=0, help="seed of the probe classifier")
    f.set_defaults(func=_cmd_forgetting)


def _data_config(a, train_size: int | None):
    from ..data import DataConfig

    return DataConfig(
        data=a.data,
        dev=a.dev,
        test=a.test,
        data_dir=a.data_dir,
        text_col=a.text_col,
        label_col=a.label_col,
        text_pair_col=a.text_pair_col,
        train_size=train_size,
        eval_size=a.eval_size,
        test_fraction=a.test_fraction,
        seed=a.data_seed,
    )


def _cmd_curve(a) -> None:
    from ..errors import TunebenchError
    from .curve import learning_curve

    if a.train_size is not None:
        raise TunebenchError("curve: give the training-set sizes with --sizes, not --train-size")
    learning_curve(
        _data_config(a, None),
        strategies=a.strategies,
        sizes=a.sizes,
        seeds=a.seeds,
        out=a.out,
        show=not a.quiet,
        model=a.model,
        options=_parse_opts(a.opt),
        train={k: getattr(a, k) for k in TRAIN_FLAGS if getattr(a, k) is not None},
        task=a.task,
        pooling=a.pooling,
        trust_remote_code=a.trust_remote_code,
        max_length=a.max_length,
        drift=a.drift,
    )


def _cmd_forgetting(a) -> None:
    from .drift import forgetting

    result = forgetting(
        a.run,
        _data_config(a, a.train_size),
        out=a.out,
        batch_size=a.batch_size,
        device=a.device,
        precision=a.precision,
        seed=a.seed,
        show=False,
    )
    print(result["text"])
