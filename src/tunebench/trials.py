"""Trials on Optuna's storage: every run a compare trains is a trial, so workers share one queue.

The run store (store.py) and Optuna's tables live in one database, `--storage` (default the SQLite
file `OUT/runs.sqlite`; `postgresql://...` for many machines). A worker takes work under a lock
(`taking_work`), so each trial is handed out once; while it trains, a heartbeat thread marks it alive.
A worker killed mid-run (kill -9) stops beating: after the grace period another worker fails the trial
(`fail_stale`) and Optuna's retry callback queues it again with the same parameters.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import socket
import threading
import warnings
from collections.abc import Iterator

import optuna
import sqlalchemy as sa
from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.trial import FrozenTrial, TrialState

from .errors import TunebenchError
from .store import engine

log = logging.getLogger("tunebench")

MAX_RETRY = 3  # a run whose worker died is retried this many times, then left failed
LOCK_ID = 0x7475_6E65  # PostgreSQL advisory lock id ("tune") for taking work
ALIVE = (TrialState.WAITING, TrialState.RUNNING)


def heartbeat_seconds() -> int:
    """Seconds between a worker's heartbeats (TUNEBENCH_HEARTBEAT, default 20); a trial without one for
    three intervals belongs to a dead worker."""
    return max(1, int(os.environ.get("TUNEBENCH_HEARTBEAT", "20")))


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@functools.cache
def storage(url: str) -> RDBStorage:
    """Optuna's storage on `url`, with heartbeats and retries of trials whose worker died."""
    beat = heartbeat_seconds()
    kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {"pool_pre_ping": True}
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # we log each run ourselves
    with warnings.catch_warnings():  # heartbeats are "experimental" in Optuna since 2.9
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            return RDBStorage(
                url,
                engine_kwargs=kwargs,
                heartbeat_interval=beat,
                grace_period=3 * beat,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY),
            )
        except (sa.exc.OperationalError, optuna.exceptions.StorageInternalError) as err:
            reason = str(getattr(err, "orig", err) or err).strip().splitlines()[0]
            raise TunebenchError(f"--storage {url}: cannot connect ({reason})") from None


def study(url: str, name: str, sampler=None, pruner=None) -> optuna.Study:
    """The study `name` on `url` (created by the first worker; later ones load it)."""
    return optuna.create_study(
        study_name=name,
        storage=storage(url),
        direction="maximize",
        sampler=sampler,
        pruner=pruner,
        load_if_exists=True,
    )


@contextlib.contextmanager
def taking_work(url: str) -> Iterator[None]:
    """Held while a worker looks for and claims its next trial: one worker at a time, on every machine
    that shares the storage (a file lock beside a SQLite file; an advisory lock in PostgreSQL)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "postgresql":
        with engine(url).connect() as db:
            db.execute(sa.text("SELECT pg_advisory_lock(:id)"), {"id": LOCK_ID})
            db.commit()
            try:
                yield
            finally:
                db.execute(sa.text("SELECT pg_advisory_unlock(:id)"), {"id": LOCK_ID})
                db.commit()
        return
    if not parsed.database or parsed.database == ":memory:":
        with _PROCESS_LOCK:
            yield
        return
    with open(parsed.database + ".lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # released when the file closes, also if the process dies
        yield


_PROCESS_LOCK = threading.Lock()


def fail_stale(study: optuna.Study) -> None:
    """Fail trials whose worker stopped beating; the storage's retry callback queues them again."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def pop_waiting(study: optuna.Study, wanted=lambda trial: True) -> tuple[optuna.Trial, FrozenTrial] | None:
    """Claim the first queued trial that `wanted` accepts (RUNNING from now on), as Optuna's own
    `ask` does; None when there is none."""
    for frozen in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        if not wanted(frozen):
            continue
        try:
            if study._storage.set_trial_state_values(frozen._trial_id, state=TrialState.RUNNING):
                return claimed(study, optuna.Trial(study, frozen._trial_id)), frozen
        except optuna.exceptions.UpdateFinishedTrialError:
            continue
    return None


def claimed(study: optuna.Study, trial: optuna.Trial) -> optuna.Trial:
    """Mark `trial` with this worker's name and start its heartbeat record."""
    trial.set_user_attr("worker", worker_name())
    study._storage.record_heartbeat(trial._trial_id)
    return trial


def requeue(study: optuna.Study, trial: optuna.Trial) -> None:
    """An interrupted trial (Ctrl-C): failed, and queued again with the same parameters, so rerunning
    the command resumes it."""
    study.tell(trial, state=TrialState.FAIL)
    RetryHeartbeatStaleTrialCallback(max_retry=None)(study, study._storage.get_trial(trial._trial_id))


@contextlib.contextmanager
def heartbeat(study: optuna.Study, trial: optuna.Trial) -> Iterator[None]:
    """While a trial trains: a thread records that its worker is alive every `heartbeat_seconds()`."""
    stop = threading.Event()

    def beat():
        while not stop.wait(heartbeat_seconds()):
            try:
                study._storage.record_heartbeat(trial._trial_id)
            except Exception as err:  # a lost connection must not kill the run; the next beat retries
                log.debug("heartbeat failed: %s", err)

    thread = threading.Thread(target=beat, name="tunebench-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def suggest(trial: optuna.Trial, space: dict[str, tuple]) -> dict:
    """Parameters for `trial` from a strategy's search space (Strategy.search_space)."""
    params = {}
    for name, (kind, *spec) in space.items():
        if kind == "log":
            params[name] = trial.suggest_float(name, spec[0], spec[1], log=True)
        elif kind == "float":
            params[name] = trial.suggest_float(name, spec[0], spec[1])
        elif kind == "int":
            params[name] = trial.suggest_int(name, spec[0], spec[1])
        elif kind == "choice":
            params[name] = trial.suggest_categorical(name, list(spec[0]))
        else:
            raise ValueError(f"search space {name}: unknown kind {kind!r}")
    return params
