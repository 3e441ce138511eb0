"""Layer probes for the tasks beyond sentence classification: text regression (a ridge probe on each
layer's pooled vector, scored by Spearman) and token classification (a logistic-regression probe on
each layer's vector at every word's first sub-token, scored by entity F1).

Same output as `probe.probe_layers` (one entry per layer and pooling, the best layer, a suggestion),
built through the same `RunInputs` and caches as `compare`, so a probe after a compare costs no forward
pass. The chance line is what a constant prediction scores: 0 (no correlation; no entity found).
"""

from __future__ import annotations

import math
import time

import numpy as np

from ..errors import TunebenchError
from ..estimators import DEFAULT_GRID, LinearProbe
from ..extract import FrozenSource
from ..runner import RunInputs
from ..tasks import TASKS
from ..tasks.token_classification.task import word_features
from .frozen import POOL_INDEX, layer_name
from .suggest import suggest

# Token probes fit one logistic regression per layer on tens of thousands of words: a short grid.
TOKEN_GRID = "0.01,0.1,1"


def probe_task_layers(task, bundle, backbone, limit: int, out, extract: dict, seed: int) -> dict:
    """The fields of probe.json that depend on the task (layers, best, majority, suggestion, ...)."""
    if task.layer_probe is None:
        probed = ", ".join(name for name, cls in TASKS.items() if cls.layer_probe is not None)
        raise TunebenchError(f"probe: not available for {task.name} (it is for {probed})")
    inputs = RunInputs(task, backbone, bundle, out, limit)
    source = FrozenSource(
        backbone, out, limit, extract["batch_size"], extract["device"], extract["precision"]
    )
    splits = inputs.splits
    words = task.layer_probe == "word"  # else "sentence": a pooled vector per example
    t0 = time.perf_counter()
    if words:
        per_layer = {s: word_features(source, inputs.enc[s]) for s in splits}  # (N_words, L+1, H)
        poolings = ["first-token"]
    else:
        per_layer = {s: source.pools(inputs.enc[s].rows) for s in splits}  # (N, L+1, 2, H)
        poolings = sorted(POOL_INDEX, key=lambda p: p != backbone.pooling)
    extract_s = time.perf_counter() - t0
    metric = task.primary_metric
    y = {s: task.frozen_targets(inputs.enc[s]) for s in splits}

    t1, layers = time.perf_counter(), []
    for pooling in poolings:
        for layer in range(per_layer["train"].shape[1]):
            if words:
                X = {s: v[:, layer].astype(np.float32) for s, v in per_layer.items()}
            else:
                X = {s: v[:, layer, POOL_INDEX[pooling]] for s, v in per_layer.items()}

            def dev_score(out, _s="dev"):
                return inputs.score(_s, out)[metric]

            probe = LinearProbe(
                grid=TOKEN_GRID if words else DEFAULT_GRID,
                regression=task.regression,
                n_classes=None if task.regression else len(bundle.label_names),
                seed=seed,
            ).fit(X["train"], y["train"], X["dev"], y["dev"], score=dev_score)
            entry = {"layer": layer, "name": layer_name(layer), "pooling": pooling, "C": probe.C_}
            for s in splits:
                if s != "train":
                    m = inputs.score(s, probe.decision_function(X[s]))
                    entry[s] = {k: v for k, v in m.items() if isinstance(v, float)}
            layers.append(entry)
    probe_s = time.perf_counter() - t1

    best = max(layers, key=lambda e: e["dev"][metric])
    by_pooling = {
        p: max((e for e in layers if e["pooling"] == p), key=lambda e: e["dev"][metric]) for p in poolings
    }
    curve = [e["dev"][metric] for e in layers if e["pooling"] == best["pooling"]]
    n_dev = len(bundle.dev)
    if words:  # F1 in [0, 1]: binomial error over the dev entities (each starts with B- in IOB2)
        n_dev = sum(t.startswith("B-") for tags in bundle.dev.tags for t in tags) or n_dev
        se = None
    else:  # Spearman x100: standard error of a correlation, (1 - r^2) / sqrt(n - 1)
        r = max(curve) / 100
        se = 100 * (1 - r * r) / math.sqrt(max(n_dev - 1, 1))
    k, plateau, text = suggest(curve, 0.0, n_dev, metric, se=se)
    return {
        "metric": metric,
        "majority": {s: 0.0 for s in splits if s != "train"},
        "layers": layers,
        "best": best,
        "best_by_pooling": by_pooling,
        "sizes": {s: len(inputs.split(s)) for s in splits},
        "suggestion": {"last_k": k, "plateau_layer": plateau, "pooling": best["pooling"], "text": text},
        "extract_seconds": extract_s,
        "probe_seconds": probe_s,
    }
