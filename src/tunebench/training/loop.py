"""The one training loop. Every gradient strategy goes through `fit`; it reads top to bottom.

A strategy decides *which* parameters train and at which learning rates (param groups) and may
change that at the start of an epoch (gradual unfreezing). The task supplies the loss; `evaluate`
turns the dev outputs into metrics (the task's scoring, with whatever decoding it needs).
"""

from __future__ import annotations

import functools
import logging
import math
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..errors import TunebenchError
from ..measure import training_heap
from ..progress import bar
from .config import TrainConfig
from .dropout import cheap_dropout
from .optim import clip_gradients, lr_lambda, make_optimizer

log = logging.getLogger("tunebench")


class Diverged(RuntimeError):
    """Loss became NaN/inf: a run failure (learning rate too high), recorded as such."""


class Pruned(RuntimeError):
    """The search's pruner stopped the run after `epoch` (its dev scores so far are not promising)."""

    def __init__(self, epoch: int, history: list[dict]):
        super().__init__(f"pruned after epoch {epoch}")
        self.epoch, self.history = epoch, history


@dataclass
class FitResult:
    best_epoch: int
    best_dev: dict
    history: list[dict] = field(default_factory=list)
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    train_examples: int = 0
    steps: int = 0
    best_outputs: object = None  # the dev outputs of the best epoch (what the restored model gives)
    train_tokens: int = 0  # non-padding tokens seen in training (0 for inputs without a mask)

    @property
    def examples_per_second(self) -> float:
        return self.train_examples / self.train_seconds if self.train_seconds > 0 else 0.0

    @property
    def tokens_per_second(self) -> float:
        return self.train_tokens / self.train_seconds if self.train_seconds > 0 else 0.0


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise TunebenchError("--device cuda: no CUDA device is visible; use --device cpu")
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


@functools.cache
def cpu_has_native_bf16() -> bool:
    """AVX512-BF16 or AMX: oneDNN runs bf16 matrix products 2-3x faster than fp32 there (measured 2.5x
    on this project's 2-core EPYC); without them bf16 is emulated and no faster. TUNEBENCH_CPU_BF16=0
    keeps `auto` at fp32 on any CPU (the test suite does, so its exact equalities hold on every machine)."""
    if os.environ.get("TUNEBENCH_CPU_BF16") == "0":
        return False
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:  # not Linux: keep fp32
        return False
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def resolve_precision(device: torch.device, precision: str) -> str:
    """`auto`: bf16 autocast on CUDA and on CPUs with native bf16, else fp32; fp32 / bf16 as asked."""
    if precision != "auto":
        return precision
    if device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16()):
        return "bf16"
    return "fp32"


def autocast(device: torch.device, precision: str):
    """bf16 autocast where `resolve_precision` says so (matrix products in bf16, reductions, norms and
    the loss in fp32, weights and optimiser state fp32); nothing for fp32."""
    if resolve_precision(device, precision) == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


@contextmanager
def casts_kept(model: nn.Module, device: torch.device, precision: str):
    """Around a whole evaluation pass whose batches each enter `autocast`: every weight is cast to bf16
    once for the pass instead of once per batch (the same values, so the same outputs; a MiniLM pass
    over SST-2's dev set 0.97 -> 0.79 s on a 2-core CPU). autocast keeps its casts of leaf tensors that
    require grad until the outermost autocast context exits: this holds one open (disabled, so nothing
    runs differently) and marks the frozen weights as requiring grad for the pass. Always under no_grad."""
    if resolve_precision(device, precision) != "bf16":
        with torch.no_grad():
            yield
        return
    frozen = [p for p in model.parameters() if p.is_floating_point() and not p.requires_grad]
    for p in frozen:
        p.requires_grad_(True)
    try:
        with torch.no_grad(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=False):
            yield
    finally:
        for p in frozen:
            p.requires_grad_(False)


def _to(batch: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """To the device; on CUDA through pinned memory, so the copy overlaps the previous step's kernels."""
    if device.type != "cuda":
        return {k: v.to(device) for k, v in batch.items()}
    return {k: v.pin_memory().to(device, non_blocking=True) for k, v in batch.items()}


@torch.no_grad()
def predict_logits(model: nn.Module, data, cfg: TrainConfig, device: torch.device) -> np.ndarray | list:
    """Outputs for every row of `data`, in the data's own order: an (N, ...) array, or for token-level
    outputs (B, T, C) a list of (T_i, C) arrays cut to each row's own length."""
    model.eval()
    out = None
    with casts_kept(model, device, cfg.precision):
        for idx, batch in data.eval_batches(cfg.eval_batch_size):
            batch.pop("labels", None)
            with autocast(device, cfg.precision):
                logits = model(**_to(batch, device)).float().cpu().numpy()
            if logits.ndim == 3 and "attention_mask" in batch:
                lengths = batch["attention_mask"].sum(1).tolist()
                if out is None:
                    out = [None] * len(data)
                for j, i in enumerate(idx):
                    out[i] = logits[j, : lengths[j]]
                continue
            if out is None:
                out = np.zeros((len(data),) + logits.shape[1:], dtype=np.float32)
            out[idx] = logits
    return out


SNAPSHOT_IN_MEMORY = 32 * 2**20  # bytes: larger best-epoch snapshots go to a temporary file


class _OnDisk(Mapping):
    """A best-epoch snapshot in a temporary safetensors file (deleted with this object)."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self._dir = tempfile.TemporaryDirectory(prefix="tunebench-best-")
        self._path = str(Path(self._dir.name) / "best.safetensors")
        save_file({n: t.detach().cpu().contiguous() for n, t in tensors.items()}, self._path)
        self._names = list(tensors)

    def __getitem__(self, name: str) -> torch.Tensor:
        return dict(self.items())[name]

    def __iter__(self):
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def items(self):
        return load_file(self._path).items()


def snapshot(tensors: dict[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    """Copies of `tensors` to restore later: in memory when small (a head, LoRA), else on disk, so full
    fine-tuning does not hold a second copy of the model in RAM for the whole run."""
    size = sum(t.numel() * t.element_size() for t in tensors.values())
    if size <= SNAPSHOT_IN_MEMORY:
        return {n: t.detach().clone() for n, t in tensors.items()}
    return _OnDisk(tensors)


def fit(
    model: nn.Module,
    param_groups: list[dict],
    train,
    dev,
    task,
    evaluate: Callable[[np.ndarray | list], dict],
    cfg: TrainConfig,
    seed: int,
    on_epoch_start: Callable[[nn.Module, int], list[dict] | None] | None = None,
    description: str = "train",
    evaluating: Callable[[nn.Module], AbstractContextManager] = lambda model: nullcontext(),
    report: Callable[[int, float], bool] | None = None,
    metric: str | None = None,
    loss_options: dict | None = None,
    extra_loss: Callable[[nn.Module, int], torch.Tensor] | None = None,
) -> FitResult:
    """Train `model` for up to `cfg.epochs`, keep the best epoch on dev by `metric` (default: the task's
    primary one). `report(epoch, dev score)` is asked after every epoch (a search's pruner); when it
    answers True the run stops with `Pruned`. `loss_options`: the task loss's class `weight` (a tensor)
    and `label_smoothing`. `extra_loss(model, step)`: a term added to every step's task loss, computed
    before that step's update (the runner's terms against forgetting, EWC and replay: mitigation.py)."""
    device = resolve_device(cfg.device)
    metric = metric or task.primary_metric
    loss_options = {k: v.to(device) if torch.is_tensor(v) else v for k, v in (loss_options or {}).items()}
    model.to(device)
    cheap_dropout(model)  # the same dropout, a cheaper mask on the CPU (training/dropout.py)
    run = torch.compile(model) if cfg.compile else model  # same parameters; `model` stays the handle
    torch.manual_seed(seed)
    # batches of several tasks (training/mixing.py) count each task's last, partial batch
    per_epoch = getattr(train, "batches_per_epoch", None)
    steps_per_epoch = per_epoch(cfg.batch_size) if per_epoch else math.ceil(len(train) / cfg.batch_size)
    total_steps = steps_per_epoch * cfg.epochs

    def new_optimizer(groups: list[dict], at_step: int = 0):
        """A fresh optimiser whose schedule starts at `at_step` (gradual unfreezing keeps its position)."""
        for g in groups:
            g.setdefault("initial_lr", g["lr"])
        opt = make_optimizer(groups, device)
        schedule = lr_lambda(cfg.schedule, total_steps, cfg.warmup_ratio)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule, last_epoch=at_step - 1)
        return opt, sched

    optimizer, scheduler = new_optimizer(param_groups) if param_groups else (None, None)
    # L2-SP's anchor: every weight but the head's as training starts (also those unfrozen later)
    anchor = (
        {n: p.detach().clone() for n, p in model.named_parameters() if not n.startswith("head.")}
        if cfg.l2sp
        else {}
    )
    result = FitResult(best_epoch=-1, best_dev={})
    best_score, best_state, bad_epochs = -math.inf, {}, 0
    before_training: dict[str, torch.Tensor] = {}  # values of params unfrozen later, for restoring
    step = 0

    for epoch in range(cfg.epochs):
        # -- strategy hook: gradual unfreezing widens the trainable set and rebuilds the optimiser
        if on_epoch_start is not None:
            was = {n for n, p in model.named_parameters() if p.requires_grad}
            groups = on_epoch_start(model, epoch)
            for n, p in model.named_parameters():
                if p.requires_grad and n not in was:
                    before_training[n] = p.detach().clone()
            if groups is not None:
                optimizer, scheduler = new_optimizer(groups, at_step=step)
        if optimizer is None:
            raise TunebenchError("this strategy leaves no trainable parameters; nothing to train")

        # -- one epoch of training
        t_epoch = time.perf_counter()
        model.train()
        t0, losses = time.perf_counter(), []
        sync_each_step = device.type != "cuda"  # on a GPU the loss is read once per epoch: no host sync
        with (
            training_heap(),
            bar(f"{description} epoch {epoch + 1}/{cfg.epochs}", steps_per_epoch) as advance,
        ):
            for batch in train.train_batches(cfg.batch_size, seed * 1000 + epoch):
                if "attention_mask" in batch:
                    result.train_tokens += int(batch["attention_mask"].sum())  # on the host: no sync
                batch = _to(batch, device)
                labels = batch.pop("labels")
                with autocast(device, cfg.precision):
                    logits = run(**batch)
                # several tasks (training/mixing.py): the batch says whose loss it is
                route = {"task": batch["task"]} if "task" in batch else {}
                loss = task.loss(logits, labels, **loss_options, **route)
                if anchor:
                    loss = loss + cfg.l2sp / 2 * l2sp_penalty(model, anchor)
                if extra_loss is not None:
                    loss = loss + extra_loss(model, step)
                if sync_each_step and not torch.isfinite(loss):
                    raise Diverged(
                        f"loss became {loss.item()} at epoch {epoch + 1}, step {step + 1}: lower --lr"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if cfg.max_grad_norm > 0:
                    params = [p for g in optimizer.param_groups for p in g["params"]]
                    clip_gradients(params, cfg.max_grad_norm, device)
                optimizer.step()
                scheduler.step()
                step += 1
                losses.append(loss.detach())
                result.train_examples += len(labels)
                advance(1)
        epoch_loss = float(torch.stack(losses).float().mean()) if losses else float("nan")  # syncs
        result.train_seconds += time.perf_counter() - t0
        if not math.isfinite(epoch_loss):
            raise Diverged(f"loss became {epoch_loss} in epoch {epoch + 1}: lower --lr")

        # -- evaluate on dev; keep the best epoch's trainable weights
        t0 = time.perf_counter()
        with evaluating(model):
            # dev data that predicts itself: several tasks' dev sets, one output set each
            predict = getattr(dev, "predict", None) or (lambda m, c, d: predict_logits(m, dev, c, d))
            dev_outputs = predict(run, cfg, device)
        dev_metrics = evaluate(dev_outputs)
        result.eval_seconds += time.perf_counter() - t0
        score = dev_metrics[metric]
        log.info(
            "  %s epoch %d/%d: train loss %.4f · dev %s %.4f · %.0f s",
            description,
            epoch + 1,
            cfg.epochs,
            epoch_loss,
            metric,
            score,
            time.perf_counter() - t_epoch,
        )
        result.history.append(
            {
                "epoch": epoch + 1,
                "train_loss": epoch_loss,
                "dev": dev_metrics,
                "lr": scheduler.get_last_lr(),
            }
        )
        if score > best_score:
            best_score, bad_epochs = score, 0
            result.best_epoch, result.best_dev = epoch + 1, dev_metrics
            best = {n: p for n, p in model.named_parameters() if p.requires_grad}
            best_state = snapshot({**best, **dict(model.named_buffers())})  # buffers: BatchNorm stats
            result.best_outputs = dev_outputs
        else:
            bad_epochs += 1
            if bad_epochs >= cfg.patience:
                break
        if report is not None and epoch + 1 < cfg.epochs and report(epoch + 1, score):
            raise Pruned(epoch + 1, result.history)

    # -- restore the best epoch (params unfrozen after it go back to their values before training)
    best_state = dict(best_state.items())  # read back (once) from disk if it went there
    with torch.no_grad():
        for n, p in [*model.named_parameters(), *model.named_buffers()]:
            if n in best_state:
                p.copy_(best_state[n])
            elif n in before_training:
                p.copy_(before_training[n])
    result.steps = step
    return result


def l2sp_penalty(model: nn.Module, anchor: dict[str, torch.Tensor]) -> torch.Tensor:
    """|w - w0|^2 summed over the anchored weights that train now (fp32)."""
    terms = [
        (p.float() - anchor[n]).pow(2).sum()
        for n, p in model.named_parameters()
        if p.requires_grad and n in anchor
    ]
    return torch.stack(terms).sum() if terms else torch.zeros(())
