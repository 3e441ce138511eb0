"""The main job: run the strategy ladder over seeds, store each run, print and write the leaderboard."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import leaderboard
from .backbones import quiet_libraries
from .data import DataConfig
from .data.named import default_task
from .errors import TunebenchError
from .runner import RunInputs, run_one
from .store import RunStore, check_out_dir, run_key
from .strategies import STRATEGIES, default_ladder
from .tasks import get_task
from .training.config import TrainConfig

log = logging.getLogger("tunebench")


@dataclass
class Plan:
    """One planned run: a configured strategy, its training settings, a seed and its store key."""

    strategy: object
    cfg: TrainConfig
    seed: int
    key: str


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
            k: type(getattr(cfg, k) if getattr(cfg, k) is not None else 0)(v)
            for k, v in per_strategy_train.items()
        }
        cfg = cfg.replace(**typed)
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
) -> list[dict]:
    """Run `strategies` x `seeds` on `data`; returns the leaderboard rows (best first).

    `data` is a DataConfig, or a dataset name / train-file path. Finished runs in `out` are reused.
    `hooks`: post-run measurements added to each gradient run's record (e.g. analysis.drift.DriftHook:
    per-layer representation drift); each is called as hook(inputs, strategy, trained backbone, cfg)
    and names its record `field`; they are not part of the run key, so a finished run without the
    field gets it from `hook.for_stored(inputs, strategy, run_dir, cfg)` instead of being retrained.
    `task` defaults to the named dataset's task, else text classification. `long_text="chunk"`
    classifies long texts by overlapping windows.
    """
    quiet_libraries()
    if isinstance(data, str):
        data = DataConfig(data=data)
    if long_text not in ("truncate", "chunk"):
        raise TunebenchError(f"--long-text {long_text}: choose truncate or chunk")
    if max_length is not None and max_length < 8:
        raise TunebenchError(f"--max-length {max_length}: must be >= 8 (or leave it out: the model's own)")
    out = check_out_dir(out)  # before any loading: a bad --out costs nothing
    options = options or {}
    for n in [*(strategies or []), *options]:
        if n != "all":
            STRATEGIES.get(n)  # unknown names fail before any work
    task = task or default_task(data)
    task_obj = get_task(task)
    bundle = task_obj.load(data)
    names = plan_strategies(task_obj, bundle, strategies)
    model = model or task_obj.default_model
    backbone = task_obj.load_backbone(model, trust_remote_code, pooling)
    limit = min(max_length or backbone.max_length, backbone.max_length)
    inputs = RunInputs(task_obj, backbone, bundle, out, limit, long_text=long_text)
    log.info("%s · model %s (max length %d, %s pooling)", bundle.describe(), model, limit, backbone.pooling)
    if inputs.truncated_share() > 0.1:
        log.warning(
            "%.0f%% of training texts are truncated at %d tokens", 100 * inputs.truncated_share(), limit
        )

    store = RunStore(out)
    plans = []
    for seed in seeds:
        for name in names:
            strategy, cfg = resolve_strategy(name, options.get(name, {}), train or {}, limit, task_obj)
            identity = {
                "task": task,
                "model": [backbone.name, backbone.path, backbone.pooling],
                "data": bundle.fingerprint(),
                "strategy": name,
                "settings": strategy.settings(),
                "train": cfg.as_dict(),
                "seed": seed,
            }
            if long_text != "truncate":  # only when set, so runs stored before the option keep their keys
                identity["long_text"] = long_text
            plans.append(Plan(strategy, cfg, seed, run_key(identity)))

    records = []
    try:
        for i, plan in enumerate(plans, 1):
            label = f"[{i}/{len(plans)}] {plan.strategy.name} seed {plan.seed}"
            done = store.finished(plan.key)
            if done:
                log.info("%s: already finished, reusing the stored result", label)
                for hook in hooks:
                    if hook.field not in done:
                        done = _add_stored(hook, inputs, plan, done, out, store)
                records.append(done)
                continue
            log.info("%s: running", label)
            record = run_one(inputs, plan.strategy, plan.cfg, plan.seed, plan.key, hooks)
            store.put(record)
            records.append(record)
            _log_result(label, record, task_obj.primary_metric)
    except KeyboardInterrupt:
        log.warning(
            "interrupted: %d finished runs are saved in %s; rerun the same command to resume",
            len(records),
            out,
        )
        _report(records, task_obj.primary_metric, out, bundle, model, show)
        raise
    rows = _report(records, task_obj.primary_metric, out, bundle, model, show)
    if export:
        export_best(rows, out, Path(export))
    return rows


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
    return default_ladder(pairs="text-pairs" in task.capabilities_of(bundle))


def ladder_order(names: list[str]) -> list[str]:
    """The default ladder's strategies first, in its order, then the rest in registry order."""
    position = {n: i for i, n in enumerate(default_ladder(pairs=True))}
    return sorted(names, key=lambda n: position.get(n, len(position)))


def _add_stored(hook, inputs: RunInputs, plan: Plan, record: dict, out: Path, store: RunStore) -> dict:
    """A finished run stored without a hook's field: measure it on the saved artifact and store it."""
    extra = hook.for_stored(inputs, plan.strategy, out / "runs" / plan.key, plan.cfg)
    if extra:
        record = {**record, **extra}
        store.put(record)
    return record


def _log_result(label: str, record: dict, metric: str) -> None:
    if record["status"] != "ok":
        log.warning("%s: %s", label, record["status"])
        return
    test = record.get("test_metrics", {}).get(metric)
    log.info(
        "%s: dev %s %.4f%s · %.1fs",
        label,
        metric,
        record["dev_metrics"][metric],
        f" · test {test:.4f}" if test is not None else "",
        record["wall_seconds"],
    )


def _report(records, metric, out, bundle, model, show) -> list[dict]:
    rows = leaderboard.build(records, metric)
    leaderboard.write(rows, records, metric, out)
    if show and rows:
        leaderboard.print_table(rows, metric, f"{bundle.describe()} · {model}")
    return rows


def export_best(rows: list[dict], out: Path, dest: Path) -> Path:
    """Copy the artifact of the best run (by dev metric) to `dest`."""
    best = next((r for r in rows if r["best_key"]), None)
    if best is None:
        raise TunebenchError("no finished run to export")
    src = out / "runs" / best["best_key"]
    if not src.is_dir():
        raise TunebenchError(f"{src}: the best run's artifact is missing; rerun compare to recreate it")
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src, dest)
    log.info("exported %s (dev %s %.4f) to %s", best["strategy"], best["metric"], best["dev_mean"], dest)
    return dest
