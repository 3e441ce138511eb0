"""The main job: run the strategy ladder over seeds, store each run, print and write the leaderboard."""

from __future__ import annotations

import inspect
import logging
import multiprocessing
import os
import shutil
from pathlib import Path

from . import leaderboard
from .backbones import quiet_libraries
from .data import DataConfig
from .data.named import default_task
from .errors import TunebenchError
from .exporting import export_run
from .mitigation import check_strategy
from .runner import RunInputs
from .store import RunStore, check_out_dir, check_url, default_url, run_key
from .strategies import STRATEGIES, default_ladder
from .strategies.base import convert_option
from .tasks import get_task
from .trackers import open_trackers
from .training import imbalance
from .training.config import TrainConfig
from .worker import Ladder, Plan, Search

log = logging.getLogger("tunebench")


def resolve_strategy(name: str, options: dict[str, str], train_overrides: dict, max_length: int, task=None):
    """Strategy defaults < the task's schedule < global overrides (--lr ...) < per-strategy options
    (--opt full.lr=3e-5)."""
    cls = STRATEGIES.get(name)
    if task is not None:
        options = {**task.strategy_options.get(name, {}), **options}
    # a strategy's own field wins over a training setting of the same name (lora.dropout is LoRA's)
    train_fields = set(TrainConfig.__dataclass_fields__) - set(cls.__dataclass_fields__)
    own = {k: v for k, v in options.items() if k not in train_fields}
    per_strategy_train = {k: v for k, v in options.items() if k in train_fields}
    strategy = cls.from_options(own)
    defaults = cls.train_defaults
    if task is not None and cls.kind == "gradient":  # the schedule is for the training loop
        defaults = task.train_defaults(name, defaults)
    cfg = TrainConfig().replace(**defaults).replace(**train_overrides)
    if per_strategy_train:
        typed = {
            k: convert_option(v, getattr(cfg, k) if getattr(cfg, k) is not None else 0, f"{name}.{k}")
            for k, v in per_strategy_train.items()
        }
        try:
            cfg = cfg.replace(**typed)
        except TunebenchError as err:  # "--lr must be > 0" is about --opt full.lr=-1 here
            # the longest flag first: "--replay-ratio ..." is not about --replay
            for k, v in sorted(per_strategy_train.items(), key=lambda kv: -len(kv[0])):
                flag = "--" + k.replace("_", "-")
                if str(err).startswith(flag):
                    why = str(err)[len(flag) :].lstrip(":").strip()
                    raise TunebenchError(f"--opt {name}.{k}={v}: {why}") from None
            raise
    if task is not None:
        imbalance.check_options(cfg, task, name)
    check_strategy(strategy, cfg)  # --ewc / --replay with scratch: before any run starts
    return strategy, cfg.replace(max_length=max_length)


def compare(
    data,
    model: str | None = None,
    strategies: list[str] | None = None,
    seeds: list[int] | tuple[int, ...] = (0,),
    out: str | Path = "tunebench-out",
    options: dict[str, dict[str, str]] | None = None,
    train: dict | None = None,
    task: str | None = None,
    export: str | Path | None = None,
    pooling: str = "auto",
    trust_remote_code: bool = False,
    max_length: int | None = None,
    show: bool = True,
    hooks: tuple = (),
    long_text: str = "truncate",
    search: int | None = None,
    search_budget: float | None = None,
    pruner: str = "median",
    storage: str | None = None,
    workers: int = 1,
    devices: list[str] | None = None,
    track: list[str] | None = None,
    select: str = "auto",
) -> list[dict]:
    """Run `strategies` x `seeds` on `data`; returns the leaderboard rows (best first).

    `data` is a DataConfig, or a dataset name / train-file path. Finished runs in `out` are reused.
    `hooks`: post-run measurements added to each gradient run's record (e.g. analysis.drift.DriftHook:
    per-layer representation drift); each is called as hook(inputs, strategy, trained backbone, cfg)
    and names its record `field`; they are not part of the run key, so a finished run without the
    field gets it from `hook.for_stored(inputs, strategy, run_dir, cfg)` instead of being retrained.
    `task` defaults to the named dataset's task, else text classification. `long_text="chunk"`
    classifies long texts by overlapping windows.

    `search=N` tunes each gradient strategy with N Optuna trials (TPE; `pruner` median, halving or none;
    `search_budget` minutes of training per strategy instead of, or as well as, N), chosen on dev; the
    best configuration then runs on every seed. `storage`: the database runs and trials are kept in
    (default `OUT/runs.sqlite`; `postgresql://...` to share one comparison between machines): every
    process started with the same arguments and storage takes the next pending run. `workers=N` starts
    N such processes here (on CPU), `devices=["cuda:0", "cuda:1"]` one per GPU. `track=["mlflow"]` logs
    each run to experiment trackers (mlflow, trackio). `select`: the dev metric that picks epochs, C and
    the winner: accuracy, macro-f1, or auto (macro-F1 when the training classes are imbalanced 3:1 or
    more, training/imbalance.py).
    """
    quiet_libraries()
    if isinstance(data, str):
        data = DataConfig(data=data)
    if long_text not in ("truncate", "chunk"):
        raise TunebenchError(f"--long-text {long_text}: choose truncate or chunk")
    if max_length is not None and max_length < 8:
        raise TunebenchError(f"--max-length {max_length}: must be >= 8 (or leave it out: the model's own)")
    _check_search(search, search_budget, pruner, workers)
    out = check_out_dir(out)  # before any loading: a bad --out costs nothing
    url = check_url(storage) if storage else default_url(out)
    trackers = open_trackers(track, out)  # a missing tracker package is one line, before any loading
    options = options or {}
    for n in [*(strategies or []), *options]:
        if n != "all":
            STRATEGIES.get(n)  # unknown names fail before any work
    args = {k: v for k, v in locals().items() if k in inspect.signature(compare).parameters or k == "url"}
    if workers > 1 or devices:
        _start_workers(args, devices or [None] * workers)
    task = task or default_task(data)
    task_obj = get_task(task)
    bundle = task_obj.load_bundle(data)
    names = plan_strategies(task_obj, bundle, strategies)
    model = model or task_obj.default_model
    backbone = task_obj.load_backbone(model, trust_remote_code, pooling)
    limit = min(max_length or backbone.max_length, backbone.max_length)
    inputs = RunInputs(task_obj, backbone, bundle, out, limit, long_text=long_text)
    log.info("%s · model %s (max length %d, %s pooling)", bundle.describe(), model, limit, backbone.pooling)
    if (unknown := inputs.unknown_share()) > 0.05:
        log.warning(
            "%.0f%% of training tokens are unknown to the %s tokenizer (emoji or an unsupported script?): the "
            "model cannot read them; choose a backbone whose vocabulary covers this text",
            100 * unknown,
            model,
        )
    if inputs.truncated_share() > 0.1:
        log.warning(
            "%.0f%% of training texts are truncated at %d tokens", 100 * inputs.truncated_share(), limit
        )

    base = {
        "task": task,
        "model": [backbone.name, backbone.path, backbone.pooling],
        "data": bundle.fingerprint(),
    }
    if long_text != "truncate":  # only when set, so runs stored before the option keep their keys
        base["long_text"] = long_text
    if select not in ("auto", "accuracy", "macro-f1"):
        raise TunebenchError(f"--select {select}: choose auto, accuracy or macro-f1")
    inputs.metric, inputs.metric_reason = imbalance.selection_metric(select, task_obj, inputs.class_counts())
    if inputs.metric != task_obj.primary_metric:  # only then in the key: earlier runs keep theirs
        base["select"] = inputs.metric
        log.info("selecting by dev %s: %s", inputs.metric, inputs.metric_reason)

    def make_plan(name: str, params: dict, seed: int, search: bool = False) -> Plan:
        """The run of strategy `name` with the command's settings, `params` (searched) over them."""
        own = {**options.get(name, {}), **params}
        strategy, cfg = resolve_strategy(name, own, train or {}, limit, task_obj)
        train_id = cfg.identity()
        if train_id["device"].startswith("cuda:"):  # which GPU ran it is not part of the result
            train_id["device"] = "cuda"
        identity = {
            **base,
            "strategy": name,
            "settings": strategy.settings(),
            "train": train_id,
            "seed": seed,
        }
        if search:  # a search trial: scored on dev only
            identity["selection"] = "dev"
        return Plan(strategy, cfg, seed, run_key(identity), params)

    searches, fixed = [], []
    for name in names:
        strategy, cfg = resolve_strategy(name, options.get(name, {}), train or {}, limit, task_obj)
        space = strategy.search_space(cfg, backbone.num_layers) if search or search_budget else {}
        if space:
            default = {k: getattr(strategy, k, getattr(cfg, k, None)) for k in space}
            budget = search_budget * 60 if search_budget else None
            searches.append(Search(name, space, default, search, budget))
    searched = {s.name for s in searches}
    fixed = [make_plan(n, {}, seed) for seed in seeds for n in names if n not in searched]
    ladder = Ladder(
        url,
        run_key(base),
        inputs,
        inputs.selection,
        make_plan,
        fixed,
        searches,
        list(seeds),
        pruner,
        hooks,
        trackers,
    )
    try:
        ladder.work()
    except KeyboardInterrupt:
        records = ladder.records()
        log.warning(
            "interrupted: %d finished runs are saved in %s; rerun the same command to resume",
            len(records),
            out,
        )
        _report(records, inputs.selection, out, bundle, model, show, ladder)
        raise
    records = [_with_hooks(r, hooks, inputs, make_plan, out, ladder.store) for r in ladder.records()]
    rows = _report(records, inputs.selection, out, bundle, model, show, ladder)
    for s in ladder.searches:
        _log_search(s.name, ladder.history(s), inputs.selection)
    if export:
        export_best(rows, out, Path(export))
    return rows


def _check_search(search, search_budget, pruner, workers) -> None:
    if search is not None and search < 1:
        raise TunebenchError(f"--search {search}: give the number of trials per strategy (>= 1)")
    if search_budget is not None and search_budget <= 0:
        raise TunebenchError(f"--search-budget {search_budget}: give minutes of training per strategy (> 0)")
    if pruner not in ("median", "halving", "none"):
        raise TunebenchError(f"--pruner {pruner}: choose median, halving or none")
    if workers < 1:
        raise TunebenchError(f"--workers {workers}: must be >= 1")


def _start_workers(args: dict, devices: list[str | None]) -> None:
    """N worker processes on this machine with the same arguments and storage (one per device when
    given; on CPU each gets its share of the cores); returns when all have stopped."""
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch or DB state
    threads = max(1, (os.cpu_count() or 1) // len(devices))
    procs = []
    for i, device in enumerate(devices):
        kwargs = {k: v for k, v in args.items() if k not in ("workers", "devices", "url")}
        kwargs.update(show=False, export=None, storage=args["url"])
        if device:
            kwargs["train"] = {**(args["train"] or {}), "device": device}
        p = ctx.Process(target=_worker_main, args=(kwargs, f"w{i + 1}", threads), name=f"tunebench-w{i + 1}")
        p.start()
        procs.append(p)
    log.info("started %d workers on %s", len(procs), ", ".join(d or "cpu" for d in devices))
    try:
        for p in procs:
            p.join()
    except KeyboardInterrupt:
        for p in procs:
            p.join(timeout=30)  # each got the Ctrl-C too: it requeues its run and stops
        raise
    failed = [p.name for p in procs if p.exitcode]
    if failed:
        log.warning(
            "%s stopped with an error; its unfinished run is retried by the others", ", ".join(failed)
        )


def _worker_main(kwargs: dict, name: str, threads: int) -> None:
    import torch  # in the child: its own thread count before any work

    logging.basicConfig(level=logging.INFO, format=f"[{name}] %(message)s")
    torch.set_num_threads(threads)
    compare(**kwargs)


def plan_strategies(task, bundle, strategies: list[str] | None) -> list[str]:
    """The strategies to run: asked-for names must apply to the task (else one line saying why); the
    default ladder and `all` quietly leave out those that don't."""
    if strategies and strategies != ["all"]:
        for n in strategies:
            reason = task.applies(STRATEGIES.get(n), bundle)
            if reason:
                raise TunebenchError(f"strategy '{n}' does not apply to {task.name}: {reason}")
        return list(strategies)
    names = STRATEGIES.names() if strategies == ["all"] else default_strategies(task, bundle)
    skipped = [n for n in names if task.applies(STRATEGIES.get(n), bundle)]
    if skipped:
        log.info(
            "not for %s: %s (tunebench strategies --task %s says why)",
            task.name,
            ", ".join(skipped),
            task.name,
        )
    return [n for n in names if n not in skipped]


def default_strategies(task, bundle=None) -> list[str]:
    """What `compare` runs without --strategies: the default ladder (with the pair strategies when the
    data has pairs), or for a task with `ladder_all` every strategy that applies."""
    if task.ladder_all:
        return [n for n in ladder_order(STRATEGIES.names()) if not task.applies(STRATEGIES.get(n), bundle)]
    offered = task.capabilities_of(bundle)
    return default_ladder(pairs="text-pairs" in offered, columns="feature-columns" in offered)


def ladder_order(names: list[str]) -> list[str]:
    """The default ladder's strategies first, in its order, then the rest in registry order."""
    position = {n: i for i, n in enumerate(default_ladder(pairs=True, columns=True))}
    return sorted(names, key=lambda n: position.get(n, len(position)))


def _with_hooks(record: dict, hooks, inputs: RunInputs, make_plan, out: Path, store: RunStore) -> dict:
    """A finished run stored without a hook's field: measure it on the saved artifact and store it."""
    for hook in hooks:
        if record["status"] != "ok" or hook.field in record:
            continue
        plan = make_plan(record["strategy"], record.get("search", {}).get("params", {}), record["seed"])
        extra = hook.for_stored(inputs, plan.strategy, out / "runs" / record["key"], plan.cfg)
        if extra:
            record = {**record, **extra}
            store.put({k: v for k, v in record.items() if k != "search"})
    return record


def _log_search(name: str, history: list[dict], metric: str) -> None:
    """What a strategy's search chose, beside its default: one line."""
    done = [t for t in history if t["state"] == "complete"]
    if not done:
        log.warning("%s: none of its %d search trials finished", name, len(history))
        return
    best = max(done, key=lambda t: (t["value"], -t["number"]))
    default = next((t for t in history if t["default"]), None)
    shown = ", ".join(
        f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best["params"].items()
    )
    pruned = sum(t["state"] == "pruned" for t in history)
    log.info(
        "%s: best of %d trials (%d pruned) dev %s %.4f with %s%s",
        name,
        len(history),
        pruned,
        metric,
        best["value"],
        shown,
        f"; the default gave {default['value']:.4f}" if default and default["value"] is not None else "",
    )


def _report(records, metric, out, bundle, model, show, ladder: Ladder) -> list[dict]:
    rows = leaderboard.build(records, metric)
    search = {s.name: ladder.history(s) for s in ladder.searches}
    leaderboard.write(rows, records, metric, out, search=search)
    if show and rows:
        leaderboard.print_table(rows, metric, f"{bundle.describe()} · {model}")
    return rows


def export_best(rows: list[dict], out: Path, dest: Path) -> Path:
    """Export the best run (by dev metric) to `dest` (exporting.py), written beside it and renamed."""
    best = next((r for r in rows if r["best_key"]), None)
    if best is None:
        raise TunebenchError("no finished run to export")
    src = out / "runs" / best["best_key"]
    if not src.is_dir():
        raise TunebenchError(f"{src}: the best run's artifact is missing; rerun compare to recreate it")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")  # atomic: other workers export too
    shutil.rmtree(tmp, ignore_errors=True)
    export_run(src, tmp, best)
    if dest.exists():
        shutil.rmtree(dest)
    tmp.rename(dest)
    log.info("exported %s (dev %s %.4f) to %s", best["strategy"], best["metric"], best["dev_mean"], dest)
    return dest
