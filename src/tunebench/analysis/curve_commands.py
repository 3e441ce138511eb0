"""`tunebench curve` and `tunebench forgetting`: the CLI plugin (listed in `cli.PLUGIN_COMMANDS`).

Heavy imports (torch, transformers, scikit-learn) happen inside the commands, so `tunebench --help`
stays fast.
"""

from __future__ import annotations

from ..cli_args import TRAIN_HELP, add_data_args, add_ladder_args, data_config, help_requested, ladder_kwargs
from ..errors import TunebenchError

# `--strategies`' default as the help shows it: `curve.default_strategies()` (the strategies that declare
# `curve`, in ladder order), spelled out so that `--help` does not import the registry and torch with it;
# tests/test_analysis_registry.py checks that the two agree.
DEFAULT_HELP = "features head full lora"


def add_commands(sub) -> None:
    c = sub.add_parser(
        "curve",
        help="learning curve: each strategy's metric over training-set sizes; where fine-tuning overtakes features",
        description="One compare per size into the same --out (finished runs are reused). Writes "
        "OUT/curve.json and OUT/curve.png and prints the size at which the best fine-tuning strategy "
        "overtakes frozen features (or head).",
    )
    add_data_args(c)
    c.add_argument(
        "--sizes", nargs="+", type=int, required=True, help="training-set sizes, e.g. 100 300 1000"
    )
    add_ladder_args(c, DEFAULT_HELP, _task_names() if help_requested() else None)
    c.set_defaults(func=_cmd_curve)

    f = sub.add_parser(
        "forgetting",
        help="does fine-tuning cost the backbone elsewhere? a frozen probe on another dataset, before vs after",
        description="A frozen probe (mean-pooled last layer + logistic regression, C on dev) on --data with "
        "the original backbone and with the fine-tuned one from --run (a run folder or an export). "
        "--data stsb: Spearman of cosine similarities on STS-B instead (no training).",
    )
    f.add_argument("--run", required=True, help="an exported run (compare --export DIR) or OUT/runs/KEY")
    add_data_args(f)
    f.add_argument("--out", help="add the result to OUT/forgetting.json")
    f.add_argument("--batch-size", type=int, default=128, help="batch size of the forward passes")
    f.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help=TRAIN_HELP["device"])
    f.add_argument(
        "--precision", default="auto", choices=["auto", "fp32", "bf16"], help=TRAIN_HELP["precision"]
    )
    f.add_argument("--seed", type=int, default=0, help="seed of the probe classifier")
    f.set_defaults(func=_cmd_forgetting)


def _cmd_curve(a) -> None:
    from .curve import learning_curve  # heavy: loads torch/transformers only when the command runs

    if a.train_size is not None:
        raise TunebenchError("curve: give the training-set sizes with --sizes, not --train-size")
    kwargs = ladder_kwargs(a)
    learning_curve(
        data_config(a),
        sizes=a.sizes,
        **{k: kwargs.pop(k) for k in ("strategies", "seeds", "out", "show")},
        **kwargs,
    )


def _cmd_forgetting(a) -> None:
    from .drift import forgetting  # heavy: loads torch/transformers only when the command runs

    result = forgetting(
        a.run,
        data_config(a),
        out=a.out,
        batch_size=a.batch_size,
        device=a.device,
        precision=a.precision,
        seed=a.seed,
        show=False,
    )
    print(result["text"])


def _task_names() -> list[str]:
    from ..tasks import TASKS  # help only: the registry imports torch

    return TASKS.names()
