"""The Python API: `compare` (the main job, with the analysis hooks the CLI offers), `predict` and
`Predictor`. Nothing here changes global state that outlives the call: warning filters and the
transformers progress-bar switch that `compare` sets while it runs are restored when it returns."""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path

from transformers.utils import logging as hf_logging

from .adapt import adapt
from .analysis.drift import DriftHook
from .comparison import compare as _compare
from .comparison import export_best
from .dapt_compare import compare_dapt as _compare_dapt
from .data import DataConfig
from .multitask_compare import compare_tasks
from .prediction import Predictor, predict

__all__ = ["Comparison", "Predictor", "adapt", "compare", "compare_dapt", "compare_tasks", "predict"]


class Comparison(list):
    """The leaderboard: one dict per strategy, best dev score first (a list, so `rows[0]` is the winner),
    with the run records behind it and what users do next.

    Attributes
    ----------
    records : list of dict
        Every run the leaderboard aggregates (settings, metrics per split, history, times, memory).
    metric : str
        The task's primary metric, by which strategies are ranked (on dev).
    out : Path
        The output folder (run store, artifacts, leaderboard files, results.json).
    """

    def __init__(self, rows: list[dict], records: list[dict], metric: str, out: Path):
        super().__init__(rows)
        self.records, self.metric, self.out = records, metric, Path(out)

    @property
    def rows(self) -> list[dict]:
        return list(self)

    @property
    def best(self) -> dict | None:
        """The row of the best strategy on dev (None when no run finished)."""
        return next((r for r in self if r.get("dev_mean") is not None), None)

    def to_pandas(self):
        """The leaderboard as a pandas DataFrame, one row per strategy (needs pandas installed)."""
        try:
            import pandas as pd  # optional: only this method needs it
        except ImportError:
            raise ImportError("to_pandas() needs pandas: pip install pandas") from None
        return pd.DataFrame(self.rows).set_index("strategy")

    def export(self, dest: str | Path) -> Path:
        """Write the best run's model to `dest`: a folder plain transformers / peft load (text models;
        see exporting.py) with a model card, which `tunebench predict --model DEST` and `Predictor`
        load too; returns `dest`."""
        return export_best(self.rows, self.out, Path(dest))

    def __repr__(self) -> str:
        best = self.best
        head = (
            f"best {best['strategy']} (dev {self.metric} {best['dev_mean']:.4f})"
            if best
            else "no finished run"
        )
        return f"<Comparison of {len(self)} strategies, {len(self.records)} runs: {head}; {self.out}>"


def compare(
    data: str | DataConfig,
    model: str | None = None,
    strategies: Sequence[str] | None = None,
    seeds: Sequence[int] = (0,),
    out: str | Path = "tunebench-out",
    *,
    task: str | None = None,
    options: dict[str, dict[str, str]] | None = None,
    train: dict | None = None,
    export: str | Path | None = None,
    pooling: str = "auto",
    max_length: int | None = None,
    long_text: str = "truncate",
    trust_remote_code: bool = False,
    drift: bool = False,
    search: int | None = None,
    search_budget: float | None = None,
    pruner: str = "median",
    storage: str | None = None,
    workers: int = 1,
    devices: Sequence[str] | None = None,
    track: Sequence[str] | None = None,
    select: str = "auto",
    show: bool = True,
    hooks: tuple = (),
) -> Comparison:
    """Run adaptation strategies x seeds on `data` and rank them on dev, with what each costs.

    Parameters
    ----------
    data : str or DataConfig
        A named dataset (``"sst2"``), a train file (CSV, TSV, JSONL, Parquet), a hub dataset id, or a
        `DataConfig` (dev/test files, columns, subsampling).
    model : str, optional
        Hub id or local folder; default the task's (all-MiniLM-L6-v2 for text, EfficientNet-Lite0 for images).
    strategies : list of str, optional
        Strategy names (``tunebench strategies``), or ``["all"]``; default the ladder
        features, head, last-k, full, lora, bitfit.
    seeds : list of int
        Every strategy runs once per seed; the leaderboard shows mean ± std.
    out : str or Path
        Output folder: the run store (finished runs are reused), artifacts and leaderboard files.
    task : str, optional
        ``text-classification``, ``text-regression``, ``token-classification``, ``question-answering``,
        ``image-classification``; default the named dataset's task, else text classification.
    options : dict, optional
        Per-strategy settings, e.g. ``{"last-k": {"k": "4"}, "full": {"lr": "3e-5"}}``.
    train : dict, optional
        Training settings for every gradient strategy (`TrainConfig` fields: lr, epochs, batch_size ...;
        for imbalanced classes ``class_weights`` ("balanced" or a file), ``label_smoothing``,
        ``sampler="balanced"``).
    export : str or Path, optional
        Write the best run here, as a model folder plain transformers / peft load.
    pooling, max_length, long_text, trust_remote_code
        As the CLI flags of the same names.
    drift : bool
        Add each fine-tuning run's per-layer representation drift (linear CKA) to its record.
    search : int, optional
        Tune each gradient strategy with this many Optuna trials (TPE, default configuration first),
        chosen on dev; the best configuration then runs on every seed.
    search_budget : float, optional
        Or search each strategy for this many minutes of training.
    select : {"auto", "accuracy", "macro-f1"}
        The dev metric that picks epochs, C and the winner (classification); auto: macro-F1 when the
        training classes are imbalanced 3:1 or more, else accuracy. Every run record says which and why.
    pruner : {"median", "halving", "none"}
        Stops search trials whose dev score after an epoch is not promising.
    storage : str, optional
        Database URL of runs and trials (default ``OUT/runs.sqlite``); ``postgresql://...`` to share one
        comparison between machines running the same call.
    workers : int
        Worker processes on this machine.
    devices : list of str, optional
        One worker per device, e.g. ``["cuda:0", "cuda:1"]``.
    track : list of str, optional
        Log each run to experiment trackers: ``"mlflow"`` (MLFLOW_TRACKING_URI, else ``OUT/mlflow.db``),
        ``"trackio"``.
    show : bool
        Print the leaderboard table.
    hooks : tuple
        Extra post-run measurements (see `tunebench.comparison.compare`).

    Returns
    -------
    Comparison
        The leaderboard rows (a list of dicts, best first) with ``records``, ``best``, ``to_pandas()``
        and ``export(dir)``.

    Examples
    --------
    >>> import tunebench
    >>> result = tunebench.compare("sst2", strategies=["features", "lora"], train={"epochs": 2})
    >>> result.best["strategy"], result.best["dev_mean"]
    >>> result.export("best-model")
    """
    hooks = (*hooks, *((DriftHook(),) if drift else ()))
    bars = hf_logging.is_progress_bar_enabled()
    with warnings.catch_warnings():  # the filters compare sets for library chatter end with the call
        try:
            rows = _compare(
                data,
                model=model,
                strategies=list(strategies) if strategies is not None else None,
                seeds=list(seeds),
                out=out,
                options=options,
                train=train,
                task=task,
                export=export,
                pooling=pooling,
                trust_remote_code=trust_remote_code,
                max_length=max_length,
                show=show,
                hooks=hooks,
                long_text=long_text,
                search=search,
                search_budget=search_budget,
                pruner=pruner,
                storage=storage,
                workers=workers,
                devices=list(devices) if devices else None,
                track=list(track) if track else None,
                select=select,
            )
        finally:
            if bars:
                hf_logging.enable_progress_bar()
    results = json.loads((Path(out) / "results.json").read_text())
    return Comparison(rows, results["runs"], results["metric"], Path(out))


def compare_dapt(
    data: str | DataConfig,
    corpus: str | Path,
    *,
    drift: bool = False,
    hooks: tuple = (),
    adapt_options: dict | None = None,
    **kwargs,
) -> dict:
    """`compare` on the original backbone and on the backbone adapted to the unlabelled `corpus` by
    continued pre-training (`adapt`; ``adapt_options``: objective, steps, epochs, lr, batch_size,
    max_length), side by side in ``OUT/dapt.md``; other keywords as `compare`'s. The corpus never
    includes the comparison's dev and test texts. Returns {"adapt": the adaptation's record, "rows": ...}.

    >>> tunebench.compare_dapt("imdb", "reviews.txt", adapt_options={"steps": 2000}, out="runs/dapt")
    """
    hooks = (*hooks, *((DriftHook(),) if drift else ()))
    return _compare_dapt(data, corpus, adapt_options=adapt_options, hooks=hooks, **kwargs)
