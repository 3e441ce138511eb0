"""`compare --tasks a,b,c`: several datasets, one backbone. The `multitask` strategy (one shared body, a
head per task) beside single-task strategies run on every task separately, each task's metric side by
side, on the same budget: the multitask run trains for the tasks' epochs weighted by their batches, so
its steps are the single-task runs' steps summed (the table shows both).

Layout of OUT: one folder per task (a plain single-task compare there, its own leaderboard and store),
`multitask/` (the multitask runs and their store) and `tasks.md` / `tasks.json`, the side-by-side table.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

from .backbones import quiet_libraries
from .comparison import compare, resolve_strategy
from .data import DataConfig
from .data.named import DATASETS, default_task
from .errors import TunebenchError
from .multitask_run import run_multitask
from .run_inputs import RunInputs
from .store import RunStore, check_out_dir, run_key
from .strategies import STRATEGIES
from .strategies.multitask import MultiTask
from .tasks import TASKS, get_task

log = logging.getLogger("tunebench")

DATA_KEYS = ("data", "name", "task", "dev", "test", "text_col", "label_col", "text_pair_col", "feature_cols")


def parse_tasks(spec, common: dict) -> list[tuple[str, DataConfig, str]]:
    """(name, DataConfig, task) per dataset of `--tasks`: comma-separated names / files, or a JSON file
    listing objects {data, task?, dev?, test?, text_col?, ...}; `common` (data_dir, train_size, ...) is
    every dataset's setting unless its entry says otherwise."""
    if isinstance(spec, str) and spec.lower().endswith(".json") and Path(spec).is_file():
        try:
            entries = json.loads(Path(spec).read_text())
        except json.JSONDecodeError as err:
            raise TunebenchError(f"--tasks {spec}: not valid JSON ({err.msg} at line {err.lineno})") from None
        if not isinstance(entries, list) or not all(isinstance(e, dict) and "data" in e for e in entries):
            raise TunebenchError(f'--tasks {spec}: expected a JSON list of objects like {{"data": "sst2"}}')
    else:
        items = spec.split(",") if isinstance(spec, str) else list(spec)
        entries = [
            {"data": s.strip()} if isinstance(s, str) else s
            for s in items
            if not isinstance(s, str) or s.strip()
        ]
    if len(entries) < 2:
        raise TunebenchError(
            "--tasks: give at least two datasets (one task each), e.g. --tasks sst2,stsb,conll2003"
        )
    out, seen = [], set()
    for entry in entries:
        unknown = set(entry) - set(DATA_KEYS) - set(common)
        if unknown:
            raise TunebenchError(
                f"--tasks: unknown key {sorted(unknown)[0]!r} for {entry['data']}; keys: {', '.join(DATA_KEYS)}"
            )
        fields = {**common, **{k: v for k, v in entry.items() if k not in ("task", "name")}}
        cfg = DataConfig(**fields)
        task = entry.get("task") or default_task(cfg)
        if task not in _text_tasks():
            raise TunebenchError(
                f"--tasks: {cfg.data} is an {task} dataset; the tasks share one text encoder, so list text datasets"
            )
        name = entry.get("name") or _name(cfg.data)
        if name in seen:
            raise TunebenchError(
                f"--tasks: two datasets are named '{name}'; list each once, or name them in a JSON list "
                '([{"data": ..., "name": ...}])'
            )
        seen.add(name)
        out.append((name, cfg, task))
    return out


def default_strategies() -> list[str]:
    """Without --strategies: each multitask strategy's default body, run per task, and the strategy."""
    multi = [n for n, cls in STRATEGIES.items() if cls.kind == MultiTask.kind]
    return [*dict.fromkeys(STRATEGIES.get(n)().body for n in multi), *multi]


def _name(data: str) -> str:
    """A dataset's short name: the registered name, else the file's stem (its folder's name for a file
    named train.*)."""
    if data in DATASETS:
        return data
    path = Path(data)
    stem = path.name.split(".")[0]
    return path.resolve().parent.name if stem.lower() in ("train", "data") else stem


def _text_tasks() -> list[str]:
    return [n for n in TASKS.names() if get_task(n).modality == "text"]


def compare_tasks(
    tasks,
    common: dict | None = None,
    model: str | None = None,
    strategies: list[str] | None = None,
    seeds=(0,),
    out: str | Path = "tunebench-out",
    options: dict[str, dict[str, str]] | None = None,
    train: dict | None = None,
    export: str | Path | None = None,
    pooling: str = "auto",
    trust_remote_code: bool = False,
    max_length: int | None = None,
    show: bool = True,
) -> list[dict]:
    """Rows of the side-by-side table, one per strategy: each task's test metric (mean over seeds),
    their mean on a 0-1 scale, steps, training time, trainable parameters and artifact size summed over
    the models that strategy needs. `strategies` default: `full` and `multitask` (body full)."""
    quiet_libraries()
    out = check_out_dir(out)
    options = options or {}
    strategies = list(strategies or default_strategies())
    kinds = {n: STRATEGIES.get(n).kind for n in strategies}  # unknown names fail before any work
    parsed = parse_tasks(tasks, common or {})
    bundles = {
        name: get_task(task).load_bundle(cfg) for name, cfg, task in parsed
    }  # bad data: before any run
    singles = [s for s in strategies if kinds[s] != MultiTask.kind]
    single = {}
    for name, cfg, task in parsed:
        if singles:
            log.info("%s (%s): single-task %s", name, task, ", ".join(singles))
            rows = compare(
                cfg,
                model=model,
                strategies=singles,
                seeds=seeds,
                out=out / name,
                options=options,
                train=train,
                task=task,
                pooling=pooling,
                trust_remote_code=trust_remote_code,
                max_length=max_length,
                show=False,
            )
            single[name] = json.loads((out / name / "results.json").read_text())["runs"] if rows else []
    multi = []
    for name in (s for s in strategies if kinds[s] == MultiTask.kind):
        multi += _run_multitask(
            name, parsed, bundles, model, seeds, out, options, train, pooling, trust_remote_code, max_length
        )
    table = _table(parsed, single, multi, singles)
    (out / "tasks.json").write_text(
        json.dumps({"rows": table, "multitask_runs": multi}, indent=1, default=str)
    )
    (out / "tasks.md").write_text(markdown(table, parsed))
    if show:
        print(markdown(table, parsed))
    if export and multi:
        best = next((r for r in multi if r["status"] == "ok"), None)
        if best is None:
            raise TunebenchError("no finished multitask run to export")
        dest = Path(export)
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(out / "multitask" / "runs" / best["key"], dest)
        log.info("exported the multitask run (%s) to %s", ", ".join(best["tasks"]), dest)
    return table


def _run_multitask(
    name, parsed, bundles, model, seeds, out, options, train, pooling, trust, max_length
) -> list[dict]:
    """The runs (one per seed) of multitask strategy `name`: its own options choose the body and the
    mixing; its other --opt values (a learning rate ...) and the body's own --opt set the body's."""
    first_task = get_task(parsed[0][2])
    backbone = first_task.load_backbone(model or first_task.default_model, trust, pooling)
    limit = min(max_length or backbone.max_length, backbone.max_length)
    parts = {
        n: RunInputs(get_task(task), backbone, bundles[n], out / "multitask", limit) for n, _, task in parsed
    }
    fields = STRATEGIES.get(name).__dataclass_fields__
    given = options.get(name, {})
    strategy, _ = resolve_strategy(name, {k: v for k, v in given.items() if k in fields}, train or {}, limit)
    body_opts = {k: v for k, v in given.items() if k not in fields}
    body_opts = {**options.get(strategy.body, {}), **body_opts}
    # the body's schedule on each task; the multitask run takes their epochs weighted by batches
    resolved = [
        resolve_strategy(strategy.body, body_opts, train or {}, limit, get_task(t)) for _, _, t in parsed
    ]
    body, cfg = resolved[0]
    batches = [math.ceil(len(bundles[n].train) / c.batch_size) for (n, _, _), (_, c) in zip(parsed, resolved)]
    epochs = max(1, round(sum(c.epochs * b for (_, c), b in zip(resolved, batches)) / sum(batches)))
    cfg = cfg.replace(epochs=epochs, patience=max(c.patience for _, c in resolved))
    store = RunStore(out / "multitask")
    records = []
    for seed in seeds:
        identity = {
            "tasks": [[n, t, bundles[n].fingerprint()] for n, _, t in parsed],
            "model": [backbone.name, backbone.path, backbone.pooling],
            "strategy": name,
            "settings": strategy.settings(),
            "body": [body.name, body.settings()],
            "train": cfg.identity(),
            "seed": seed,
        }
        key = run_key(identity)
        record = store.finished(key)
        if record is None:
            log.info(
                "multitask (body %s, %d epochs over %s): seed %d", body.name, epochs, ", ".join(parts), seed
            )
            record = run_multitask(parts, strategy, body, cfg, seed, key, out / "multitask")
            store.put(record)
        records.append(record)
    return records


def _table(parsed, single: dict, multi: list[dict], singles: list[str]) -> list[dict]:
    names = [n for n, _, _ in parsed]
    metric = {n: get_task(t).primary_metric for n, _, t in parsed}
    scale = {n: get_task(t).metric_scale for n, _, t in parsed}
    rows = []
    for s in singles:
        per_task, steps, seconds, params, size = {}, 0, 0.0, 0, 0
        for n in names:
            runs = [r for r in single.get(n, []) if r["strategy"] == s and r["status"] == "ok"]
            if not runs:
                per_task[n] = None
                continue
            per_task[n] = sum(r["test_metrics"][metric[n]] for r in runs) / len(runs)
            steps += runs[0].get("steps", 0)
            seconds += sum(r["wall_seconds"] for r in runs) / len(runs)
            params += runs[0]["trainable_params"]
            size += runs[0]["artifact_bytes"]
        rows.append(_row(f"{s} (one model per task)", per_task, scale, steps, seconds, params, size))
    ok = [r for r in multi if r["status"] == "ok"]
    if ok:
        per_task = {
            n: sum(r["task_metrics"][n]["test_metrics"][metric[n]] for r in ok) / len(ok) for n in names
        }
        first = ok[0]
        label = f"multitask (body {first['body']['strategy']}, {first['settings']['sampling']}, {first['settings']['weighting']})"
        seconds = sum(r["wall_seconds"] for r in ok) / len(ok)
        rows.append(
            _row(
                label,
                per_task,
                scale,
                first["steps"],
                seconds,
                first["trainable_params"],
                first["artifact_bytes"],
            )
        )
    for r in multi:
        if r["status"] != "ok":
            rows.append({"strategy": r["strategy"], "status": r["status"], "tasks": {}})
    return rows


def _row(label, per_task, scale, steps, seconds, params, size) -> dict:
    known = [v / scale[n] for n, v in per_task.items() if v is not None]
    return {
        "strategy": label,
        "status": "ok" if len(known) == len(per_task) else "incomplete",
        "tasks": per_task,
        "mean": sum(known) / len(known) if known else None,
        "steps": steps,
        "seconds": round(seconds, 1),
        "trainable_params": params,
        "artifact_bytes": size,
    }


def markdown(rows: list[dict], parsed) -> str:
    names = [n for n, _, _ in parsed]
    metric = {n: get_task(t).primary_metric for n, _, t in parsed}
    head = "| strategy | " + " | ".join(f"{n} test {metric[n]}" for n in names)
    head += " | mean (0-1) | steps | train+eval s | trainable params | artifact MB |"
    lines = [head, "|---" * (len(names) + 6) + "|"]
    for r in rows:
        if r["status"] not in ("ok", "incomplete"):
            lines.append(f"| {r['strategy']} | {r['status']} |")
            continue
        cells = ["–" if r["tasks"][n] is None else f"{r['tasks'][n]:.4f}" for n in names]
        mean = "–" if r["mean"] is None else f"{r['mean']:.4f}"
        lines.append(
            f"| {r['strategy']} | " + " | ".join(cells) + f" | {mean} | {r['steps']} | {r['seconds']:.0f} | "
            f"{r['trainable_params']:,} | {r['artifact_bytes'] / 1e6:.1f} |"
        )
    return "\n".join(lines)
