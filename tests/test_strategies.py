"""Strategy-specific behaviour on the tiny BERT (the matrix of every task x strategy is test_common.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tunebench.backbones import load_backbone
from tunebench.data import DataConfig, load_text_classification
from tunebench.model import TaskModel
from tunebench.strategies import STRATEGIES
from tunebench.tasks import get_task
from tunebench.training.batching import TokenBatches

GRADIENT = [n for n, cls in STRATEGIES.items() if cls.kind == "gradient"]


def dev_metrics(task, bundle):
    """The loop's `evaluate`: dev outputs -> the task's metrics."""
    return lambda out: task.metrics(out, np.asarray(bundle.dev.labels), bundle.label_names)


@pytest.fixture(scope="module")
def setup(tiny_model, tiny_data):
    backbone = load_backbone(tiny_model)
    bundle = load_text_classification(
        DataConfig(data=tiny_data["train"], dev=tiny_data["dev"], test=tiny_data["test"])
    )
    task = get_task("text-classification")
    pad = backbone.tokenizer.pad_token_id
    rows = {s: task.encode(backbone, getattr(bundle, s), 64).rows for s in ("train", "dev")}
    data = {s: TokenBatches(rows[s], getattr(bundle, s).labels, pad) for s in rows}
    return backbone, bundle, task, data


def build(setup, name: str, **options):
    backbone, bundle, task, _ = setup
    strategy = STRATEGIES.get(name).from_options(options)
    torch.manual_seed(0)
    head = task.build_head(backbone.hidden_size, len(bundle.label_names), backbone.pooling, 0.1)
    module = backbone.random_model(0) if strategy.from_scratch else backbone.fresh_model()
    return strategy, strategy.prepare(TaskModel(module, head))


def strategy_config(strategy, **overrides):
    from tunebench.training.config import TrainConfig

    return TrainConfig().replace(**strategy.train_defaults).replace(**overrides)


def test_gradual_unfreezes_one_layer_per_epoch_from_the_top(setup):
    strategy, model = build(setup, "gradual")
    layers = model.backbone.encoder.layer
    cfg = strategy_config(strategy)

    def trains(module):
        return all(p.requires_grad for p in module.parameters())

    assert not trains(layers[-1])
    strategy.on_epoch_start(model, 1, cfg)
    assert trains(layers[-1]) and not trains(layers[0])
    strategy.on_epoch_start(model, 2, cfg)
    assert trains(layers[0]) and not trains(model.backbone.embeddings)
    strategy.on_epoch_start(model, 3, cfg)
    assert trains(model.backbone.embeddings)


def test_llrd_rates_decay_by_factor_per_layer(setup):
    strategy, model = build(setup, "llrd", factor="0.5")
    cfg = strategy_config(strategy, lr=1e-3)
    groups = strategy.param_groups(model, cfg)
    rate = {id(p): g["lr"] for g in groups for p in g["params"]}
    layers = model.backbone.encoder.layer
    assert rate[id(model.head.out.weight)] == pytest.approx(1e-3)
    assert rate[id(layers[-1].output.dense.weight)] == pytest.approx(5e-4)
    assert rate[id(layers[0].output.dense.weight)] == pytest.approx(2.5e-4)
    assert rate[id(model.backbone.embeddings.word_embeddings.weight)] == pytest.approx(1.25e-4)
    assert len(rate) == sum(1 for _ in model.parameters())  # every parameter is in exactly one group


def test_adapters_start_as_identity(setup):
    backbone, bundle, task, data = setup
    _, plain = build(setup, "head")
    _, adapted = build(setup, "adapters")
    batch = next(data["dev"].eval_batches(8))[1]
    batch.pop("labels")
    plain.eval(), adapted.eval()
    with torch.no_grad():
        assert torch.allclose(plain(**batch), adapted(**batch), atol=1e-6)


def test_scratch_starts_from_random_weights(setup):
    _, pretrained = build(setup, "full")
    _, scratch = build(setup, "scratch")
    w = "encoder.layer.0.attention.self.query.weight"
    assert not torch.equal(pretrained.backbone.get_parameter(w), scratch.backbone.get_parameter(w))


def test_features_logreg_binary_logits_match_sklearn_probabilities():
    from sklearn.linear_model import LogisticRegression

    from tunebench.estimators import LinearProbe

    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 5))
    y = (X[:, 0] + 0.3 * rng.normal(size=80) > 0).astype(int)
    f = LinearProbe(C=1.0).fit(X, y, X, y)
    ref = LogisticRegression(C=1.0, max_iter=3000).fit(f._standardize(X), y)
    assert np.allclose(f.predict_proba(X), ref.predict_proba(f._standardize(X)), atol=1e-5)
    assert f.C_ == 1.0


@pytest.mark.parametrize("classifier", ["logreg", "mlp"])
def test_features_keep_a_column_for_classes_missing_from_train(classifier):
    from tunebench.estimators import LinearProbe

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4))
    y = np.where(X[:, 0] > 0, 2, 0)  # label ids 0 and 2 of 3; id 1 never occurs
    f = LinearProbe(classifier, C=10.0, n_classes=3).fit(X, y, X, y)
    logits = f.decision_function(X)
    assert logits.shape == (300, 3) and not (logits.argmax(1) == 1).any()
    assert (logits.argmax(1) == y).mean() > 0.9


def test_linear_probe_fits_on_one_blas_thread_and_gives_the_threads_back():
    """lbfgs on a few thousand rows: BLAS threads cost more to wake than they save (1.1 s -> 0.06 s
    for SST-2's path on 2 cores), so the fit runs on one; the caller's setting is restored after."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from tunebench.estimators import LinearProbe

    def blas_threads() -> set[int]:
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    seen = []

    def score(logits):  # runs inside the fit, once per C
        seen.append(blas_threads())
        return float((logits.argmax(-1) == y).mean())

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 6))
    y = (X[:, 0] > 0).astype(int)
    with threadpool_limits(2, user_api="blas"):
        before = blas_threads()
        LinearProbe(grid="0.1,1").fit(X, y, X, y, score=score)
        assert blas_threads() == before
    assert seen == [{1}, {1}]


def test_half_precision_checkpoint_loads_as_float32(tmp_path):
    """Hub checkpoints saved in fp16/bf16 train from fp32 master weights (transformers 5 keeps a
    checkpoint's dtype unless told otherwise; AdamW steps vanish in half precision)."""
    import torch
    from conftest import make_tiny_model
    from transformers import AutoModel

    from tunebench.backbones import load_backbone

    path = make_tiny_model(tmp_path / "half")
    AutoModel.from_pretrained(path).to(torch.bfloat16).save_pretrained(path)
    assert {p.dtype for p in load_backbone(str(path)).model.parameters()} == {torch.float32}
