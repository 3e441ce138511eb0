"""Which strategies to try first: a rule of thumb before training, and the measured answer after.

Before any training, `advise` scores the strategies with rules from the literature. Every reason names
the one input it comes from (train_size=300, gap=large, ...) so a user can see why, and disagree.
After a compare, `analyse` reads the leaderboard: the winner, the Pareto set over (dev metric ↑,
time ↓, peak memory ↓), the cheapest strategy within noise of the best, and whether the rule agreed.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from ..errors import TunebenchError
from .diagnostics import standard_error

TASKS = ("text-classification", "text-pair", "token-classification")
GAPS = ("small", "medium", "large")
DEVICES = ("cpu", "cuda")

# Rough cost model, measured by this project on 2 CPU cores with all-MiniLM-L6-v2 (22.7M parameters)
# on SST-2 sentences (~25 tokens): examples per second of one training epoch, and default epochs
# (the strategies' `train_defaults`; tests check they match the registry). Forward-only passes
# (feature extraction, evaluation) run at FORWARD_RATE. Scaled linearly with model size; CUDA is
# taken as CUDA_SPEEDUP times faster. Good to a factor of ~2: enough to see what fits a budget.
REFERENCE_PARAMS_M = 22.7
FORWARD_RATE = 260.0
CUDA_SPEEDUP = 30.0
TRAIN_RATE = {
    "last-k": 190.0,
    "full": 84.0,
    "lora": 70.0,
    "bitfit": 86.0,
    "gradual": 120.0,
    "llrd": 84.0,
    "adapters": 80.0,
}
EPOCHS = {"head": 20, "last-k": 3, "full": 3, "lora": 3, "bitfit": 3, "gradual": 4, "llrd": 3, "adapters": 3}
CANDIDATES = ("features", "head", "last-k", "lora", "bitfit", "full", "llrd", "gradual", "adapters")
TRAINABLE_SHARE = {
    "lora": 0.015,
    "bitfit": 0.001,
    "adapters": 0.03,
    "head": 0.0,
    "features": 0.0,
    "last-k": 0.3,
}

PETERS = "Peters, Ruder & Smith 2019, 'To Tune or Not to Tune?'"
FEW_SAMPLE = "Mosbach et al. 2021; Zhang et al. 2021 (few-sample fine-tuning instability)"


@dataclass(frozen=True)
class Reason:
    input: str  # the input this reason follows from, e.g. "train_size"
    value: str  # its value, e.g. "300"
    text: str
    source: str = ""
    effect: float = 0.0  # what it added to the strategy's score (0 for general notes)

    def __str__(self) -> str:
        sign = f" ({self.effect:+g})" if self.effect else ""
        return f"{self.input}={self.value}{sign}: {self.text}" + (f" [{self.source}]" if self.source else "")


@dataclass
class Pick:
    strategy: str
    score: float = 0.0
    minutes: float | None = None  # rough estimate of one run's wall time
    reasons: list[Reason] = field(default_factory=list)


@dataclass
class Advice:
    inputs: dict
    try_first: list[Pick]
    later: list[Pick]
    notes: list[Reason]

    def as_dict(self) -> dict:
        return asdict(self)


def estimate_minutes(
    strategy: str, train_size: int, device: str = "cpu", params_m: float = REFERENCE_PARAMS_M
) -> float:
    """Rough wall time of one run: training epochs + a dev evaluation per epoch (+ extraction for frozen)."""
    dev = min(max(train_size / 9, 200), 2000)  # a 10% dev split, within usual bounds
    scale = params_m / REFERENCE_PARAMS_M / (CUDA_SPEEDUP if device == "cuda" else 1.0)
    if strategy in ("features", "head"):  # one cached forward pass over every split; the fit is seconds
        seconds = (train_size + 2 * dev) / FORWARD_RATE * scale + 2
    else:
        epochs = EPOCHS.get(strategy, 3)
        seconds = (
            epochs * train_size / TRAIN_RATE.get(strategy, 84.0) + (epochs + 2) * dev / FORWARD_RATE
        ) * scale
    return seconds / 60


def advise(
    train_size: int,
    task: str = "text-classification",
    device: str = "cpu",
    budget_minutes: float | None = None,
    gap: str = "medium",
    memory_gb: float | None = None,
    params_m: float = REFERENCE_PARAMS_M,
    first: int = 3,
) -> Advice:
    """Score the strategies from the inputs; the top `first` that fit the budget are the ones to try first."""
    _check(train_size, task, device, gap, budget_minutes, memory_gb)
    picks = {s: Pick(s, minutes=estimate_minutes(s, train_size, device, params_m)) for s in CANDIDATES}
    notes: list[Reason] = []

    def rule(name: str, value, deltas: dict[str, float], text: str, source: str = "") -> None:
        for s, d in deltas.items():
            picks[s].score += d
            picks[s].reasons.append(Reason(name, str(value), text, source, d))

    _size_rules(rule, train_size)
    _task_rules(rule, notes, task)
    _gap_rules(rule, gap)
    _memory_rules(rule, memory_gb, params_m)
    if device == "cpu":
        rule(
            "device",
            device,
            {"features": 0.5, "head": 0.5, "last-k": 0.5},
            "on CPU time is the constraint: a frozen forward pass runs once (cached) and costs ~3x less than a "
            "training step; last-k stops the backward pass after k layers (measured here: 192 vs 84 examples/s)",
        )
        rule(
            "device",
            device,
            {"lora": -0.5, "bitfit": -0.5},
            "on CPU, LoRA/BitFit save memory and artifact size but little time: the backward pass still "
            "runs through every layer",
            "peft issues #925, #664; measured here: LoRA 70 vs full 84 examples/s on MiniLM-L6",
        )
    else:
        rule(
            "device",
            device,
            {"full": 0.5, "llrd": 0.5},
            "on a GPU, fine-tuning a small encoder takes minutes: time rarely decides, memory may",
        )
    if budget_minutes is not None:
        for p in picks.values():
            if p.minutes > budget_minutes:
                p.score -= 10
                p.reasons.append(
                    Reason(
                        "budget_minutes",
                        f"{budget_minutes:g}",
                        f"estimated {p.minutes:.1f} min on {device} exceeds the budget",
                        effect=-10,
                    )
                )
    ranked = sorted(picks.values(), key=lambda p: (-p.score, p.minutes))
    fits = [p for p in ranked if budget_minutes is None or p.minutes <= budget_minutes]
    if not fits:
        cheapest = min(ranked, key=lambda p: p.minutes)
        fits = [cheapest]
        notes.append(
            Reason(
                "budget_minutes",
                f"{budget_minutes:g}",
                f"nothing fits: even the cheapest, {cheapest.strategy}, needs ~{cheapest.minutes:.1f} min; "
                "subsample with --train-size or use a GPU",
            )
        )
    head = fits[:first]
    inputs = {
        "train_size": train_size,
        "task": task,
        "device": device,
        "budget_minutes": budget_minutes,
        "gap": gap,
        "memory_gb": memory_gb,
        "params_m": params_m,
    }
    return Advice(inputs, head, [p for p in ranked if p not in head], notes)


def _check(train_size, task, device, gap, budget_minutes, memory_gb) -> None:
    if not isinstance(train_size, int) or train_size < 1:
        raise TunebenchError(
            f"--train-size {train_size}: give the number of labelled training examples (>= 1)"
        )
    if task not in TASKS:
        raise TunebenchError(f"--task {task}: choose from {', '.join(TASKS)}")
    if device not in DEVICES:
        raise TunebenchError(f"--device {device}: choose cpu or cuda")
    if gap not in GAPS:
        raise TunebenchError(f"--gap {gap}: choose small, medium or large")
    if budget_minutes is not None and budget_minutes <= 0:
        raise TunebenchError(f"--budget-minutes {budget_minutes}: must be > 0")
    if memory_gb is not None and memory_gb <= 0:
        raise TunebenchError(f"--memory-gb {memory_gb}: must be > 0")


def _size_rules(rule, n: int) -> None:
    if n < 100:
        rule(
            "train_size",
            n,
            {"features": 3, "head": 2},
            "under 100 labels: a linear classifier on frozen sentence embeddings is the strong cheap baseline; "
            "SetFit-style contrastive tuning of the encoder (not in tunebench) is the next step",
            "Tunstall et al. 2022, SetFit",
        )
        rule(
            "train_size",
            n,
            {"full": -2, "llrd": -1, "gradual": -1},
            "with so few labels full fine-tuning is unstable across seeds; if you try it, run >= 5 seeds",
            FEW_SAMPLE,
        )
    elif n < 1000:
        rule(
            "train_size",
            n,
            {"features": 2, "head": 1},
            "a few hundred labels: frozen features are a strong, cheap baseline",
            PETERS,
        )
        rule(
            "train_size",
            n,
            {"bitfit": 1, "lora": 1},
            "parameter-efficient tuning matches full fine-tuning on small data and overfits less",
            "Ben Zaken et al. 2022, BitFit; Hu et al. 2021, LoRA",
        )
        rule(
            "train_size",
            n,
            {"full": -1},
            "full fine-tuning under ~1k examples varies a lot by seed",
            FEW_SAMPLE,
        )
    elif n < 10000:
        rule(
            "train_size",
            n,
            {"last-k": 1, "lora": 1, "full": 1},
            "thousands of labels: fine-tuning usually gains a few points over frozen features (keep a "
            "frozen baseline to measure the gain)",
            PETERS,
        )
        rule(
            "train_size",
            n,
            {"gradual": 0.5, "llrd": 0.5},
            "discriminative learning rates and gradual unfreezing help most on mid-sized data",
            "Howard & Ruder 2018, ULMFiT",
        )
    else:
        rule(
            "train_size",
            n,
            {"full": 2, "lora": 2, "llrd": 1, "last-k": 1},
            "with ample labels fine-tuning pulls ahead of frozen features",
            PETERS,
        )
        rule(
            "train_size",
            n,
            {"features": -1, "head": -1},
            "frozen features leave accuracy on the table here",
            PETERS,
        )


def _task_rules(rule, notes: list[Reason], task: str) -> None:
    if task == "text-classification":
        rule(
            "task",
            task,
            {"features": 1, "head": 1},
            "for single-text classification such as sentiment, frozen BERT features come close to fine-tuning",
            PETERS,
        )
    elif task == "text-pair":
        rule(
            "task",
            task,
            {"full": 2, "lora": 1, "last-k": 1, "llrd": 1},
            "sentence-pair tasks (NLI, paraphrase, similarity) need cross-sentence attention that only "
            "fine-tuning learns: fine-tuning is clearly ahead of frozen features",
            PETERS,
        )
        rule(
            "task",
            task,
            {"features": -2, "head": -2},
            "frozen features trail clearly on sentence pairs",
            PETERS,
        )
        notes.append(
            Reason(
                "task",
                task,
                "run it as `compare --text-pair-col COL` (--task text-regression for scores such as STS-B); "
                "the frozen bi-encoder baselines cosine and bi-encoder run in the same ladder",
            )
        )
    else:
        rule(
            "task",
            task,
            {"features": 1},
            "for NER, frozen features (concatenated top layers) come within ~0.3 F1 of fine-tuning",
            f"{PETERS}; Devlin et al. 2019, Table 7",
        )
        notes.append(
            Reason(
                "task",
                task,
                "run it as `compare --task token-classification` (e.g. --data conll2003); "
                "--opt features.layers=concat-last-4 is Table 7's best frozen combination",
            )
        )


def _gap_rules(rule, gap: str) -> None:
    if gap == "small":
        rule(
            "gap",
            gap,
            {"features": 1, "head": 1},
            "text like the pretraining data: frozen representations already fit it",
        )
    elif gap == "medium":
        rule(
            "gap",
            gap,
            {"last-k": 1, "lora": 1},
            "some domain shift: adapt the top layers or low-rank updates",
        )
    else:
        rule(
            "gap",
            gap,
            {"full": 2, "llrd": 1, "last-k": 1},
            "far from the pretraining domain: update the whole network (or last-k with a larger k, "
            "--opt last-k.k=4); continued pretraining on unlabelled in-domain text helps most",
            "Gururangan et al. 2020, 'Don't Stop Pretraining'",
        )
        rule(
            "gap",
            gap,
            {"features": -2, "head": -2, "bitfit": -1},
            "frozen features miss the domain's meaning",
        )


def _memory_rules(rule, memory_gb: float | None, params_m: float) -> None:
    if memory_gb is None:
        return
    full_gb = params_m * 1e6 * 16 / 1e9  # fp32 weights + gradients + two Adam states
    if memory_gb < 4 * full_gb:  # activations come on top; 4x leaves room for a batch
        rule(
            "memory_gb",
            f"{memory_gb:g}",
            {"lora": 2, "bitfit": 2, "last-k": 1},
            f"tight memory: full fine-tuning of {params_m:g}M parameters needs ~{full_gb:.2f} GB for weights, "
            "gradients and Adam states before activations; LoRA/BitFit train ~1% of them",
            "Hu et al. 2021; Ben Zaken et al. 2022",
        )
        rule("memory_gb", f"{memory_gb:g}", {"full": -2, "llrd": -2, "gradual": -1}, "may not fit in memory")


# -- after a compare --------------------------------------------------------------------------------


@dataclass
class Analysis:
    metric: str
    winner: dict | None
    pareto: list[str]  # strategies not dominated on (dev metric ↑, time ↓, peak memory ↓)
    cheapest: dict | None  # fastest strategy whose mean is within `band` of the best
    band: float
    band_kind: str
    advice: Advice | None
    agreement: str

    def as_dict(self) -> dict:
        return asdict(self)


def pareto_set(rows: list[dict]) -> list[str]:
    """Strategies no other strategy beats on dev mean, time and peak memory at once."""
    pts = [
        r
        for r in rows
        if all(isinstance(r.get(k), (int, float)) for k in ("dev_mean", "time_s", "peak_mem_mb"))
    ]

    def dominates(a, b) -> bool:
        ge = (
            a["dev_mean"] >= b["dev_mean"]
            and a["time_s"] <= b["time_s"]
            and a["peak_mem_mb"] <= b["peak_mem_mb"]
        )
        gt = a["dev_mean"] > b["dev_mean"] or a["time_s"] < b["time_s"] or a["peak_mem_mb"] < b["peak_mem_mb"]
        return ge and gt

    return [b["strategy"] for b in pts if not any(dominates(a, b) for a in pts if a is not b)]


def analyse(
    records: list[dict], rows: list[dict], metric: str, facts: dict | None = None, **rule_inputs
) -> Analysis:
    """The measured answer for one output folder. The rule of thumb's inputs come from the records
    (train size, device), `facts` (the gap verdict of gap.json) and `rule_inputs`, which win."""
    ranked = [r for r in rows if isinstance(r.get("dev_mean"), (int, float))]
    if not ranked:
        return Analysis(metric, None, [], None, 0.0, "", None, "no finished run to analyse")
    best = ranked[0]
    ok = [r for r in records if r.get("status") == "ok"]
    n_dev = next(((r.get("sizes") or {}).get("dev") for r in ok), 0) or 0
    if best.get("seeds", 0) >= 2:
        band, kind = best.get("dev_std") or 0.0, f"one seed standard deviation of {best['strategy']}"
    else:
        band = standard_error(best["dev_mean"], n_dev)
        kind = f"one binomial standard error on {n_dev} dev examples (one seed: seed std unmeasured)"
    near = [r for r in ranked if r["dev_mean"] >= best["dev_mean"] - band - 1e-12]
    cheapest = min(near, key=lambda r: r["time_s"] if isinstance(r.get("time_s"), (int, float)) else math.inf)
    advice, agreement = _rule_check(ok, ranked, band, (facts or {}).get("gap"), rule_inputs)
    return Analysis(metric, best, pareto_set(ranked), cheapest, band, kind, advice, agreement)


def _rule_check(
    ok: list[dict], ranked: list[dict], band: float, gap: str | None, inputs: dict
) -> tuple[Advice | None, str]:
    if not ok:
        return None, "no finished run"
    first = ok[0]
    derived = {
        "train_size": int((first.get("sizes") or {}).get("train") or 1),
        "device": "cuda" if str(first.get("device", "")).startswith("cuda") else "cpu",
    }
    measured_gap = {"gap": gap} if gap else {}
    given = {k: v for k, v in inputs.items() if v is not None}
    advice = advise(**{**derived, **measured_gap, **given})
    origin = (
        {k: "records" for k in derived} | {k: "gap.json" for k in measured_gap} | {k: "given" for k in given}
    )
    shown = ", ".join(
        f"{k}={v} ({origin.get(k, 'assumed')})"
        for k, v in advice.inputs.items()
        if v is not None and k != "params_m"
    )
    measured = {r["strategy"]: r for r in ranked}
    picks = [p.strategy for p in advice.try_first]
    tried = [measured[s] for s in picks if s in measured]
    best = ranked[0]
    if not tried:
        return advice, f"given {shown}: its first picks ({', '.join(picks)}) were not measured"
    top = max(tried, key=lambda r: r["dev_mean"])
    order = [p.strategy for p in advice.try_first + advice.later]
    rank = (
        f"{order.index(best['strategy']) + 1} of {len(order)}" if best["strategy"] in order else "not at all"
    )
    if top is best:
        verdict = f"agreed: the winner {best['strategy']} is among its first picks ({', '.join(picks)})"
    elif best["dev_mean"] - top["dev_mean"] <= band + 1e-12:
        verdict = (
            f"agreed within noise: its best first pick, {top['strategy']} ({top['dev_mean']:.4f}), is within "
            f"{band:.4f} of the winner {best['strategy']} ({best['dev_mean']:.4f})"
        )
    else:
        verdict = (
            f"disagreed: its first picks ({', '.join(picks)}) reach {top['dev_mean']:.4f} at best "
            f"({top['strategy']}), {best['dev_mean'] - top['dev_mean']:.4f} below the winner "
            f"{best['strategy']} ({best['dev_mean']:.4f}), which it ranked {rank}"
        )
    return advice, f"given {shown}: {verdict}"


# -- text output -----------------------------------------------------------------------------------


def format_advice(advice: Advice) -> str:
    """Each reason is printed next to the input it follows from and what it added to the score."""
    lines = ["Try first:"]
    for i, p in enumerate(advice.try_first, 1):
        lines.append(f"  {i}. {p.strategy}  (score {p.score:+g}, ~{p.minutes:.1f} min per run)")
        lines += [f"       {r}" for r in sorted(p.reasons, key=lambda r: -r.effect)]
    lines.append("Later:")
    for p in advice.later:
        against = sorted((r for r in p.reasons if r.effect < 0), key=lambda r: r.effect)
        why = str(against[0]) if against else "outscored by the picks above"
        lines.append(f"  - {p.strategy} (score {p.score:+g}, ~{p.minutes:.1f} min): {why}")
    if advice.notes:
        lines.append("Notes:")
        lines += [f"  - {r}" for r in advice.notes]
    lines.append(
        "Times are rough: from this project's 2-core CPU measurements on MiniLM-L6 with short texts, "
        "scaled by model size (and ~30x for CUDA); long texts cost proportionally more."
    )
    return "\n".join(lines)


def format_analysis(a: Analysis) -> str:
    if a.winner is None:
        return a.agreement
    w = a.winner
    lines = [
        f"Winner: {w['strategy']}  dev {a.metric} {w['dev_mean']:.4f}"
        + (f" ± {w['dev_std']:.4f} ({w['seeds']} seeds)" if w.get("seeds", 0) > 1 else " (1 seed)"),
        f"Pareto set (dev {a.metric} ↑, time ↓, peak memory ↓): {', '.join(a.pareto)}",
    ]
    if a.cheapest is not None:
        c = a.cheapest
        lines.append(
            f"Cheapest within noise: {c['strategy']}  dev {c['dev_mean']:.4f}, {c['time_s']:.1f} s "
            f"(band ±{a.band:.4f} = {a.band_kind})"
        )
    lines.append(f"Rule of thumb: {a.agreement}")
    return "\n".join(lines)
