"""The worker loop: take the next pending run or search trial from the storage, train it, record it,
until the comparison is done. One process, or many on many machines, run the same loop on one storage.

Every run is an Optuna trial. The fixed ladder's runs (strategy x seed) are trials queued in one study;
`--search` gives each strategy its own study, where TPE proposes the next configuration (the default
configuration first) and a pruner stops runs whose dev score after an epoch is not promising. When a
strategy's search is over, its best configuration (on dev) is queued on every seed, scored on test,
and that is what the leaderboard shows.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field

import optuna
from optuna.trial import TrialState

from . import trials
from .runner import RunInputs, prefix_depths, run_one
from .store import RunStore, run_key
from .trackers import log_run

log = logging.getLogger("tunebench")


@dataclass
class Plan:
    """One run: a configured strategy, its training settings, a seed, its store key, and the searched
    parameters it was made from (empty for the command's own settings)."""

    strategy: object
    cfg: object
    seed: int
    key: str
    params: dict = field(default_factory=dict)


@dataclass
class Search:
    """One strategy's search: its space, the default configuration (the first trial) and when to stop."""

    name: str
    space: dict
    default: dict
    trials: int | None = None  # at most this many trials (failed ones that were retried not counted)
    budget_s: float | None = None  # or this much training time, summed over its trials
    study: optuna.Study | None = None


def poll_seconds() -> float:
    """How often a worker with nothing to take looks again (TUNEBENCH_POLL, default 5)."""
    return float(os.environ.get("TUNEBENCH_POLL", "5"))


@dataclass
class Job:
    study: optuna.Study
    trial: optuna.Trial
    plan: Plan
    search: Search | None = None  # set for a search trial (dev only, pruned)


class Ladder:
    """What one compare asks for, on one storage. `make_plan(strategy, params, seed, search)` builds a
    run (a search trial's runs are scored on dev only, so their keys differ from the final runs')."""

    def __init__(
        self,
        url: str,
        base: str,
        inputs: RunInputs,
        metric: str,
        make_plan: Callable[..., Plan],
        fixed: list[Plan],
        searches: list[Search],
        seeds: list[int],
        pruner: str = "median",
        hooks: tuple = (),
        trackers: list | None = None,
    ):
        self.url, self.inputs, self.metric, self.make_plan = url, inputs, metric, make_plan
        self.seeds, self.hooks, self.store = list(seeds), hooks, RunStore(url=url)
        self.trackers = trackers or []
        self.fixed_plans = fixed
        self.plans = {p.key: p for p in fixed}  # every run this command wants, by key
        pending = [(p.strategy, p.cfg) for p in fixed if self.store.finished(p.key) is None]
        inputs.prefetch = prefix_depths(inputs, pending)  # last-k's frozen blocks run with the features pass
        self.finals: dict[str, list[Plan]] = {}  # strategy -> its best configuration on every seed
        with trials.taking_work(url):
            self.queue = trials.study(url, f"tunebench:{base}:runs")
            self._enqueue(fixed)
            for s in searches:
                s.study = trials.study(
                    url,
                    f"tunebench:{base}:search:{s.name}:{_hash([s.space, seeds[0], pruner])}",
                    sampler=_sampler(s, seeds[0]),
                    pruner=_pruner(pruner),
                )
                if not s.study.get_trials(deepcopy=False):  # the default configuration goes first
                    s.study.enqueue_trial(s.default, user_attrs={"default": True})
        self.searches = searches

    # -- taking work ---------------------------------------------------------------------------
    def work(self) -> None:
        """Take, train and record runs until none is pending here or running in another worker."""
        waiting_since = None
        while True:
            with trials.taking_work(self.url):
                job = self._next_job()
            if job is not None:
                waiting_since = None
                self._execute(job)
                continue
            running = self._running_elsewhere()
            if not running:
                return
            if waiting_since is None:
                waiting_since = time.monotonic()
                log.info(
                    "waiting for %d run(s) in other workers (a dead worker's run is retried after %d s)",
                    running,
                    3 * trials.heartbeat_seconds(),
                )
            time.sleep(poll_seconds())

    def _next_job(self) -> Job | None:
        for study in [self.queue, *(s.study for s in self.searches)]:
            trials.fail_stale(study)  # a dead worker's trial: failed, and queued again
        popped = trials.pop_waiting(self.queue, lambda t: t.user_attrs.get("key") in self.plans)
        if popped:
            return Job(self.queue, popped[0], self.plans[popped[1].user_attrs["key"]])
        for s in self.searches:
            popped = trials.pop_waiting(s.study)
            if popped is None and self._wants_more(s):
                with warnings.catch_warnings():  # "heartbeat is meant for optimize()": we beat ourselves
                    warnings.simplefilter("ignore", UserWarning)
                    popped = (trials.claimed(s.study, s.study.ask()), None)
            if popped is not None:
                trial = popped[0]
                params = trials.suggest(trial, s.space)
                plan = self.make_plan(s.name, params, self.seeds[0], search=True)
                trial.set_user_attr("key", plan.key)
                return Job(s.study, trial, plan, s)
            if s.name not in self.finals and not _alive(s.study):  # search over: its best on every seed
                best = self.best(s)
                if best is not None:
                    finals = [self.make_plan(s.name, best.params, seed) for seed in self.seeds]
                    self.finals[s.name] = finals
                    self.plans.update({p.key: p for p in finals})
                    self._enqueue(finals)
                    return self._next_job()
        return None

    def _wants_more(self, s: Search) -> bool:
        counted = _counted(s.study)
        if s.trials is not None and len(counted) >= s.trials:
            return False
        if s.budget_s is not None and _spent(counted) >= s.budget_s:
            return False
        return True

    def _running_elsewhere(self) -> int:
        running = [
            t
            for t in self.queue.get_trials(deepcopy=False, states=trials.ALIVE)
            if t.user_attrs.get("key") in self.plans
        ]
        for s in self.searches:
            running += s.study.get_trials(deepcopy=False, states=trials.ALIVE)
        return len(running)

    def _enqueue(self, plans: list[Plan]) -> None:
        """Queue the runs not already queued, running or done (a failed one is queued again)."""
        have = {
            t.user_attrs.get("key")
            for t in self.queue.get_trials(deepcopy=False)
            if t.state in (*trials.ALIVE, TrialState.COMPLETE)
        }
        for p in plans:
            if p.key not in have:
                attrs = {"key": p.key, "strategy": p.strategy.name, "seed": p.seed, "params": p.params}
                self.queue.enqueue_trial({}, user_attrs=attrs)

    # -- training one ----------------------------------------------------------------------------
    def _execute(self, job: Job) -> None:
        plan, s = job.plan, job.search
        label = _label(plan, s, job.trial)
        record = self.store.finished(plan.key)
        try:
            if record is not None:
                log.info("%s: already finished, reusing the stored result", label)
            else:
                log.info("%s: running", label)
                inputs = self.inputs.dev_only() if s else self.inputs
                hooks = () if s else self.hooks
                report = _reporter(job.trial) if s else None
                with trials.heartbeat(job.study, job.trial):
                    record = run_one(inputs, plan.strategy, plan.cfg, plan.seed, plan.key, hooks, report)
                self.store.put(record)
                _log_result(label, record, self.metric)
                if self.trackers:
                    log_run(
                        self.trackers,
                        {**record, "search_trial": bool(s)},
                        self.inputs.out_dir / "runs" / plan.key,
                    )
        except KeyboardInterrupt:
            trials.requeue(job.study, job.trial)  # rerunning the command resumes it
            raise
        except BaseException:
            job.study.tell(job.trial, state=TrialState.FAIL)
            raise
        if record["status"] == "ok":
            job.study.tell(job.trial, record["dev_metrics"][self.metric])
        elif record["status"] == "pruned":
            job.study.tell(job.trial, state=TrialState.PRUNED)
        else:
            job.study.tell(job.trial, state=TrialState.FAIL)

    # -- what the leaderboard reads --------------------------------------------------------------
    def best(self, s: Search) -> optuna.trial.FrozenTrial | None:
        """The search's best finished trial on dev (the earliest of equals); None if none finished."""
        done = s.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        return max(done, key=lambda t: (t.value, -t.number)) if done else None

    def records(self) -> list[dict]:
        """The stored records of the runs the leaderboard shows: the fixed ladder's, then each searched
        strategy's best configuration on every seed (with its search summary)."""
        wanted = [p.key for p in self.fixed_plans]
        stored = self.store.many(wanted + [p.key for f in self.finals.values() for p in f])
        out = [stored[k] for k in wanted if k in stored]
        for s in self.searches:
            history = self.history(s)
            summary = {"trials": len(history), "best": self.best(s).number if self.best(s) else None}
            finals = [stored[p.key] for p in self.finals.get(s.name, []) if p.key in stored]
            if not finals:  # nothing finished: the trials' own records say why
                trial_keys = [t["key"] for t in history if t.get("key")]
                finals = list(self.store.many(trial_keys).values())[-1:]
            out += [{**r, "search": {**summary, "params": self.finals_params(s)}} for r in finals]
        return out

    def finals_params(self, s: Search) -> dict:
        return self.finals[s.name][0].params if self.finals.get(s.name) else {}

    def history(self, s: Search) -> list[dict]:
        """Every counted trial of the search: number, state, dev score, parameters, epochs run."""
        return [
            {
                "number": t.number,
                "state": t.state.name.lower(),
                "value": t.value,
                "params": t.params,
                "epochs": len(t.intermediate_values) + (t.state == TrialState.COMPLETE),
                "key": t.user_attrs.get("key"),
                "default": bool(t.user_attrs.get("default")),
            }
            for t in _counted(s.study)
            if t.state.is_finished()
        ]


def _hash(obj) -> str:
    return run_key({"x": json.loads(json.dumps(obj, default=str))})[:12]


def _sampler(s: Search, seed: int) -> optuna.samplers.BaseSampler:
    """TPE, seeded; a third of the trials (at least 3, the default among them) explore first; the
    constant liar keeps parallel workers from proposing the same configuration."""
    startup = max(3, (s.trials or 12) // 3)
    seed = seed * 1000 + zlib.crc32(s.name.encode()) % 1000  # strategies do not all draw the same points
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)


def _pruner(name: str) -> optuna.pruners.BasePruner:
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    return optuna.pruners.NopPruner()


def _reporter(trial: optuna.Trial) -> Callable[[int, float], bool]:
    def report(epoch: int, score: float) -> bool:
        trial.report(score, epoch)
        return trial.should_prune()

    return report


def _alive(study: optuna.Study) -> bool:
    return bool(study.get_trials(deepcopy=False, states=trials.ALIVE))


def _counted(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The search's trials, less those that failed and were queued again (their retry counts instead)."""
    every = study.get_trials(deepcopy=False)
    retried = {n for t in every for n in t.system_attrs.get("retry_history", [])}
    return [t for t in every if t.number not in retried]


def _spent(counted: list[optuna.trial.FrozenTrial]) -> float:
    now = datetime.datetime.now()
    return sum(
        ((t.datetime_complete or now) - t.datetime_start).total_seconds()
        for t in counted
        if t.datetime_start is not None
    )


def _label(plan: Plan, s: Search | None, trial: optuna.Trial) -> str:
    if s is None:
        return f"{plan.strategy.name} seed {plan.seed}"
    shown = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in plan.params.items())
    of = f"/{s.trials}" if s.trials else ""
    return f"{plan.strategy.name} trial {trial.number + 1}{of} ({shown})"


def _log_result(label: str, record: dict, metric: str) -> None:
    if record["status"] == "pruned":
        log.info("%s: pruned after epoch %d", label, record["best_epoch"])
        return
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
