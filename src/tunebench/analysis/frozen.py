"""The frozen backbone's features of a dataset, built exactly as `compare` builds them (so the feature
cache is shared), and the linear probe fitted on them: the common ground of `probe`, `probe_tasks` and
`gap`. Imports nothing from the rest of `analysis`, so those modules import it, never the reverse."""

from __future__ import annotations

import numpy as np

from ..backbones import quiet_libraries
from ..data import DataConfig
from ..errors import TunebenchError
from ..estimators import LinearProbe
from ..extract import FrozenSource
from ..tasks import get_task

POOL_INDEX = {"cls": 0, "mean": 1}  # position in the cache's pooling axis
# The task when the caller names none (`gap`, and `forgetting` on a labelled file): the analyses that
# read a class label per text. A documented default of `load_inputs(task=...)`, not a table of tasks.
DEFAULT_TASK = "text-classification"


def load_inputs(
    data_cfg, model: str, max_length: int | None, trust_remote_code: bool, task: str = DEFAULT_TASK
):
    """(bundle, backbone, task, max length), built exactly as `compare` builds them, so cache keys match."""
    quiet_libraries()
    if isinstance(data_cfg, str):
        data_cfg = DataConfig(data=data_cfg)
    if max_length is not None and max_length < 8:
        raise TunebenchError(f"--max-length {max_length}: must be >= 8")
    task_obj = get_task(task)
    bundle = task_obj.load_bundle(data_cfg)
    backbone = task_obj.load_backbone(model, trust_remote_code)
    limit = min(max_length or backbone.max_length, backbone.max_length)
    return bundle, backbone, task_obj, limit


def frozen_features(
    bundle, backbone, task, limit: int, out, splits=("train", "dev", "test"), **extract
) -> tuple[dict[str, np.ndarray], float]:
    """Split -> (N, L+1, 2, H) pooled features from the cache; and the forward-pass seconds spent now
    (0.0 when every split came from the cache). `extract`: batch_size, device, precision."""
    source = FrozenSource(backbone, out, limit, **extract)
    pools = {}
    for name in splits:
        split = getattr(bundle, name)
        if split is not None:
            pools[name] = source.pools(task.encode(backbone, split, limit).rows)
    return pools, source.seconds


def fit_probe(X: np.ndarray, y: np.ndarray, X_dev: np.ndarray, y_dev: np.ndarray, seed: int = 0):
    """Standardize -> logistic regression, C chosen on dev (the `features` strategy's classifier)."""
    return LinearProbe(seed=seed).fit(X, y, X_dev, y_dev)  # one BLAS thread inside (estimators.py)


def majority_share(train_labels: np.ndarray, labels: np.ndarray) -> float:
    """Score of always predicting train's most frequent class (the chance line of the probe plot)."""
    return float(np.mean(labels == np.bincount(train_labels).argmax()))


def layer_name(layer: int) -> str:
    return "embeddings" if layer == 0 else f"block {layer}"
