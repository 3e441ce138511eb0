"""--track: each run logged to MLflow (local file store here) with its settings, per-epoch metrics,
final numbers and artifact; a tracker that is not installed is one line with the install command."""

from __future__ import annotations

import importlib.util

import pytest

import tunebench
from tunebench.cli import main
from tunebench.data import DataConfig
from tunebench.trackers import local_uri


def test_mlflow_gets_every_run_with_params_epochs_metrics_and_artifact(
    tiny_model, tiny_data, tmp_path, monkeypatch
):
    mlflow = pytest.importorskip("mlflow")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    data = DataConfig(data=tiny_data["train"], dev=tiny_data["dev"], test=tiny_data["test"])
    kw = {"model": tiny_model, "strategies": ["features", "head"], "out": tmp_path, "show": False}
    tunebench.compare(data, train={"epochs": 3, "batch_size": 16}, track=["mlflow"], **kw)
    client = mlflow.MlflowClient(tracking_uri=local_uri(tmp_path))
    experiment = client.get_experiment_by_name("tunebench")
    runs = {r.data.tags["strategy"]: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"features", "head"}
    head = runs["head"]
    assert head.data.params["train.lr"] == "0.001" and head.data.params["seed"] == "0"
    assert {"dev_accuracy", "test_accuracy", "wall_seconds", "trainable_params"} <= set(head.data.metrics)
    steps = [m.step for m in client.get_metric_history(head.info.run_id, "train_loss")]
    assert steps[:3] == [1, 2, 3]
    files = {f.path for f in client.list_artifacts(head.info.run_id, "artifact")}
    assert "artifact/manifest.json" in files
    # a rerun reuses the stored runs and logs nothing new
    tunebench.compare(data, train={"epochs": 3, "batch_size": 16}, track=["mlflow"], **kw)
    assert len(client.search_runs([experiment.experiment_id])) == 2


@pytest.mark.skipif(importlib.util.find_spec("trackio") is not None, reason="trackio is installed here")
def test_a_tracker_not_installed_is_one_line_with_the_extra(tiny_data, tmp_path, capsys):
    assert main(["compare", "--data", tiny_data["train"], "--out", str(tmp_path), "--track", "trackio"]) == 2
    err = capsys.readouterr().err.strip()
    assert (
        err == "tunebench: error: --track trackio: trackio is not installed; pip install 'tunebench[trackio]'"
    )
