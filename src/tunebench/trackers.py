"""Experiment trackers (`compare --track mlflow trackio`): each finished run's settings, per-epoch history,
final metrics and costs, and its artifact, logged where the team already looks. Optional extras: the
run store stays the source of truth, and a tracker that fails only warns."""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

from .errors import TunebenchError

log = logging.getLogger("tunebench")

EXTRAS = {"mlflow": "mlflow", "trackio": "trackio"}  # --track name -> pip extra of tunebench


def flat(prefix: str, values: dict) -> dict:
    """{"lr": 1e-3} under "train" -> {"train.lr": 1e-3}; nested dicts joined with dots."""
    out = {}
    for k, v in values.items():
        key = f"{prefix}.{k}" if prefix else str(k)
        out.update(flat(key, v) if isinstance(v, dict) else {key: v})
    return out


def local_uri(out: Path) -> str:
    """MLflow's store in the output folder (its file store is deprecated; SQLite is the local default)."""
    return f"sqlite:///{(Path(out) / 'mlflow.db').resolve()}"


def run_name(record: dict) -> str:
    return f"{record['strategy']} seed {record['seed']}" + (
        " (search trial)" if record.get("search_trial") else ""
    )


def summary(record: dict) -> dict[str, float]:
    """Final numbers of a run: dev/test metrics, time, memory, parameters, artifact size."""
    numbers = {}
    for split in ("dev", "test"):
        for k, v in (record.get(f"{split}_metrics") or {}).items():
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                numbers[f"{split}_{k}"] = float(v)
    for k in ("wall_seconds", "peak_memory_mb", "trainable_params", "artifact_bytes", "examples_per_second"):
        if isinstance(record.get(k), (int, float)):
            numbers[k] = float(record[k])
    return numbers


def epochs(record: dict):
    """(epoch, {name: value}) per epoch of the history: train loss and every numeric dev metric."""
    for h in record.get("history") or []:
        values = {"train_loss": h.get("train_loss")}
        values.update({f"dev_{k}": v for k, v in (h.get("dev") or {}).items()})
        yield h["epoch"], {k: float(v) for k, v in values.items() if isinstance(v, (int, float))}


class MLflow:
    """One MLflow run per tunebench run, in experiment `tunebench`; MLFLOW_TRACKING_URI if set, else a
    local SQLite store OUT/mlflow.db with artifacts in OUT/mlruns
    (`mlflow ui --backend-store-uri sqlite:///OUT/mlflow.db`)."""

    def __init__(self, out: Path):
        self.mlflow = mlflow = _import("mlflow")
        if not os.environ.get("MLFLOW_TRACKING_URI"):
            mlflow.set_tracking_uri(local_uri(out))
            if mlflow.get_experiment_by_name("tunebench") is None:
                mlflow.create_experiment(
                    "tunebench", artifact_location=(Path(out) / "mlruns").resolve().as_uri()
                )
        mlflow.set_experiment("tunebench")

    def log(self, record: dict, run_dir: Path) -> None:
        mlflow = self.mlflow
        with mlflow.start_run(run_name=run_name(record)):
            mlflow.set_tags(
                {"strategy": record["strategy"], "key": record["key"], "status": record["status"]}
            )
            params = {
                **flat("settings", record.get("settings") or {}),
                **flat("train", record.get("train_config") or {}),
            }
            mlflow.log_params({k: str(v)[:500] for k, v in params.items()} | {"seed": record["seed"]})
            for epoch, values in epochs(record):
                mlflow.log_metrics(values, step=epoch)
            mlflow.log_metrics(summary(record))
            if run_dir.is_dir():
                mlflow.log_artifacts(str(run_dir), artifact_path="artifact")


class Trackio:
    """One trackio run per tunebench run, in project `tunebench` (trackio's local dashboard)."""

    def __init__(self, out: Path):
        self.trackio = _import("trackio")

    def log(self, record: dict, run_dir: Path) -> None:
        config = {
            **flat("settings", record.get("settings") or {}),
            **flat("train", record.get("train_config") or {}),
        }
        self.trackio.init(
            project="tunebench", name=run_name(record), config={**config, "seed": record["seed"]}
        )
        try:
            for epoch, values in epochs(record):
                self.trackio.log(values, step=epoch)
            self.trackio.log(summary(record))
        finally:
            self.trackio.finish()


TRACKERS = {"mlflow": MLflow, "trackio": Trackio}


def _import(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        raise TunebenchError(
            f"--track {name}: {name} is not installed; pip install 'tunebench[{EXTRAS[name]}]'"
        ) from None


def open_trackers(names: list[str] | None, out: Path) -> list:
    """The trackers asked for, ready to log (a missing one is one line with the install command)."""
    for name in names or []:
        if name not in TRACKERS:
            raise TunebenchError(f"--track {name}: unknown tracker; choose {', '.join(TRACKERS)}")
    return [TRACKERS[name](out) for name in names or []]


def log_run(trackers: list, record: dict, run_dir: Path) -> None:
    """Log a finished run to every tracker; a tracker's failure is a warning, never the run's."""
    for tracker in trackers:
        try:
            tracker.log(record, run_dir)
        except Exception as err:  # a tracker server down must not stop the ladder
            log.warning("%s: could not log %s (%s)", type(tracker).__name__, run_name(record), err)
