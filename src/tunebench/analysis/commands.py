"""`tunebench probe` and `tunebench gap`: the CLI plugin (listed in `cli.PLUGIN_COMMANDS`).

Heavy imports (torch, transformers, scikit-learn) happen inside the commands, so `tunebench --help`
stays fast.
"""

from __future__ import annotations

import argparse

from ..cli_args import TRAIN_HELP, TRUST_HELP, add_data_args, data_config, help_requested
from ..errors import TunebenchError


def add_commands(sub) -> None:
    p = sub.add_parser(
        "probe",
        help="probe every layer of the frozen backbone; suggest where partial fine-tuning should start",
        description="One forward pass (feature cache shared with compare), then a logistic-regression "
        "probe per layer and pooling (ridge for regression; per word for NER). Writes OUT/probe.json and "
        "OUT/probe.png.",
    )
    add_data_args(p)
    _add_model_args(p)
    p.add_argument("--task", help=f"{_probe_tasks()} (default: the dataset's)")
    p.set_defaults(func=_cmd_probe)

    g = sub.add_parser(
        "gap",
        help="how far the data is from the model's vocabulary, or from a reference corpus",
        description="Tokenizer fertility, unknown tokens, long words, truncation and a frozen probe; "
        "with --reference also vocabulary overlap and an embedding MMD. Writes OUT/gap.json.",
    )
    add_data_args(g)
    _add_model_args(g)
    r = g.add_argument_group("reference")
    r.add_argument("--reference", help="named dataset (sst2, imdb) or a file (csv/tsv/jsonl/parquet)")
    r.add_argument("--reference-text-col", help="text column of the reference file (default: auto)")
    r.add_argument(
        "--sample-size", type=int, default=1000, help="texts per side for the embedding distance (1000)"
    )
    g.set_defaults(func=_cmd_gap)


def _add_model_args(p: argparse.ArgumentParser) -> None:
    m = p.add_argument_group("model")
    m.add_argument(
        "--model", default="minilm", help="hub id, local directory, or 'minilm' (packaged default)"
    )
    m.add_argument("--out", default="tunebench-out", help="output dir; shares its feature cache with compare")
    m.add_argument("--max-length", type=int, help="longest input in tokens (default: the model's own limit)")
    m.add_argument("--trust-remote-code", action="store_true", help=TRUST_HELP)
    m.add_argument("--batch-size", type=int, default=128, help="batch size of the forward pass")
    m.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help=TRAIN_HELP["device"])
    m.add_argument(
        "--precision", default="auto", choices=["auto", "fp32", "bf16"], help=TRAIN_HELP["precision"]
    )


def _model_kwargs(a) -> dict:
    if a.batch_size < 1:
        raise TunebenchError(f"--batch-size {a.batch_size}: must be >= 1")
    return {
        "model": a.model,
        "out": a.out,
        "max_length": a.max_length,
        "trust_remote_code": a.trust_remote_code,
        "batch_size": a.batch_size,
        "device": a.device,
        "precision": a.precision,
        "show": not a.quiet,
    }


def _cmd_probe(a) -> None:
    from .probe import probe_layers  # heavy: loads torch/transformers only when the command runs

    probe_layers(data_config(a), seed=a.data_seed, task=a.task, **_model_kwargs(a))


def _cmd_gap(a) -> None:
    from .gap import domain_gap  # heavy: loads torch/transformers only when the command runs

    domain_gap(
        data_config(a),
        reference=a.reference,
        reference_text_col=a.reference_text_col,
        data_dir=a.data_dir,
        sample_size=a.sample_size,
        seed=a.data_seed,
        **_model_kwargs(a),
    )


def _probe_tasks() -> str:
    """The tasks with a layer probe, for the help (listed only when help is shown: see help_requested)."""
    if not help_requested():
        return "a task with a layer probe (text-classification, token-classification, ...)"
    from ..tasks import TASKS  # help only

    return ", ".join(n for n in TASKS.names() if TASKS.get(n).layer_probe)
