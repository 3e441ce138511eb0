"""The rule of thumb before any training: which strategies to try first for a situation.

Each rule is data: an id, the one input it follows from (train_size=300, gap=large, ...), when it
applies, the claim and its source. What a rule adds to a strategy's score is declared by the strategy
itself (`hints.advice[rule id]`), so a new strategy joins the advice without an edit here; the
candidates are the registered strategies with hints, in registry order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from ..errors import TunebenchError
from ..strategies import STRATEGIES
from ..tasks import TASKS
from .cost import estimate_minutes
from .inputs import DEVICES, GAPS, REFERENCE_PARAMS_M

PAIRS = "text-pair"  # a pseudo-task: sentence pairs, run as a classification/regression with --text-pair-col
OVER_BUDGET = -10  # what a pick whose estimated time exceeds the budget loses

PETERS = "Peters, Ruder & Smith 2019, 'To Tune or Not to Tune?'"
FEW_SAMPLE = "Mosbach et al. 2021; Zhang et al. 2021 (few-sample fine-tuning instability)"


def task_choices() -> list[str]:
    """What `--task` accepts: the registered tasks and the sentence-pair pseudo-task."""
    return [*TASKS.names(), PAIRS]


@dataclass(frozen=True)
class Situation:
    """The inputs of `advise`."""

    train_size: int
    task: str
    device: str
    budget_minutes: float | None
    gap: str
    memory_gb: float | None
    params_m: float

    @property
    def full_gb(self) -> float:
        return self.params_m * 1e6 * 16 / 1e9  # fp32 weights + gradients + two Adam states

    def shown(self, name: str) -> str:
        value = getattr(self, name)
        return str(value) if name == "train_size" or isinstance(value, str) else f"{value:g}"


@dataclass(frozen=True)
class Rule:
    id: str  # the key of the strategies' `hints.advice`
    input: str  # the Situation field it follows from
    when: Callable[[Situation], bool]
    text: str  # str.format template over the Situation `s`
    source: str = ""
    note: str = ""  # a general note added when the rule applies


def _is(name: str, value: str) -> Callable[[Situation], bool]:
    return lambda s: getattr(s, name) == value


def _tight(s: Situation) -> bool:
    """Less memory than 4x full fine-tuning's states: activations come on top, 4x leaves room for a batch."""
    return s.memory_gb is not None and s.memory_gb < 4 * s.full_gb


RULES: tuple[Rule, ...] = (
    # -- how many labels --
    Rule(
        "labels<100",
        "train_size",
        lambda s: s.train_size < 100,
        "under 100 labels: a linear classifier on frozen sentence embeddings is the strong cheap baseline; "
        "SetFit-style contrastive tuning of the encoder (not in tunebench) is the next step",
        "Tunstall et al. 2022, SetFit",
    ),
    Rule(
        "labels<100:unstable",
        "train_size",
        lambda s: s.train_size < 100,
        "with so few labels full fine-tuning is unstable across seeds; if you try it, run >= 5 seeds",
        FEW_SAMPLE,
    ),
    Rule(
        "labels<1k",
        "train_size",
        lambda s: 100 <= s.train_size < 1000,
        "a few hundred labels: frozen features are a strong, cheap baseline",
        PETERS,
    ),
    Rule(
        "labels<1k:peft",
        "train_size",
        lambda s: 100 <= s.train_size < 1000,
        "parameter-efficient tuning matches full fine-tuning on small data and overfits less",
        "Ben Zaken et al. 2022, BitFit; Hu et al. 2021, LoRA",
    ),
    Rule(
        "labels<1k:unstable",
        "train_size",
        lambda s: 100 <= s.train_size < 1000,
        "full fine-tuning under ~1k examples varies a lot by seed",
        FEW_SAMPLE,
    ),
    Rule(
        "labels<10k",
        "train_size",
        lambda s: 1000 <= s.train_size < 10000,
        "thousands of labels: fine-tuning usually gains a few points over frozen features (keep a "
        "frozen baseline to measure the gain)",
        PETERS,
    ),
    Rule(
        "labels<10k:discriminative",
        "train_size",
        lambda s: 1000 <= s.train_size < 10000,
        "discriminative learning rates and gradual unfreezing help most on mid-sized data",
        "Howard & Ruder 2018, ULMFiT",
    ),
    Rule(
        "labels>=10k",
        "train_size",
        lambda s: s.train_size >= 10000,
        "with ample labels fine-tuning pulls ahead of frozen features",
        PETERS,
    ),
    Rule(
        "labels>=10k:frozen-behind",
        "train_size",
        lambda s: s.train_size >= 10000,
        "frozen features leave accuracy on the table here",
        PETERS,
    ),
    # -- the task --
    Rule(
        "task=text-classification",
        "task",
        _is("task", "text-classification"),
        "for single-text classification such as sentiment, frozen BERT features come close to fine-tuning",
        PETERS,
    ),
    Rule(
        "task=text-pair",
        "task",
        _is("task", PAIRS),
        "sentence-pair tasks (NLI, paraphrase, similarity) need cross-sentence attention that only "
        "fine-tuning learns: fine-tuning is clearly ahead of frozen features",
        PETERS,
    ),
    Rule(
        "task=text-pair:frozen-behind",
        "task",
        _is("task", PAIRS),
        "frozen features trail clearly on sentence pairs",
        PETERS,
        note="run it as `compare --text-pair-col COL` (--task text-regression for scores such as STS-B); "
        "the frozen bi-encoder baselines cosine and bi-encoder run in the same ladder",
    ),
    Rule(
        "task=token-classification",
        "task",
        _is("task", "token-classification"),
        "for NER, frozen features (concatenated top layers) come within ~0.3 F1 of fine-tuning",
        f"{PETERS}; Devlin et al. 2019, Table 7",
        note="run it as `compare --task token-classification` (e.g. --data conll2003); "
        "--opt features.layers=concat-last-4 is Table 7's best frozen combination",
    ),
    # -- the domain gap --
    Rule(
        "gap=small",
        "gap",
        _is("gap", "small"),
        "text like the pretraining data: frozen representations already fit it",
    ),
    Rule(
        "gap=medium",
        "gap",
        _is("gap", "medium"),
        "some domain shift: adapt the top layers or low-rank updates",
    ),
    Rule(
        "gap=large",
        "gap",
        _is("gap", "large"),
        "far from the pretraining domain: update the whole network (or last-k with a larger k, "
        "--opt last-k.k=4); continued pretraining on unlabelled in-domain text helps most",
        "Gururangan et al. 2020, 'Don't Stop Pretraining'",
    ),
    Rule(
        "gap=large:frozen-miss",
        "gap",
        _is("gap", "large"),
        "frozen features miss the domain's meaning",
    ),
    # -- memory --
    Rule(
        "memory-tight",
        "memory_gb",
        _tight,
        "tight memory: full fine-tuning of {s.params_m:g}M parameters needs ~{s.full_gb:.2f} GB for weights, "
        "gradients and Adam states before activations; LoRA/BitFit train ~1% of them",
        "Hu et al. 2021; Ben Zaken et al. 2022",
    ),
    Rule("memory-tight:no-fit", "memory_gb", _tight, "may not fit in memory"),
    # -- the device --
    Rule(
        "device=cpu:cached",
        "device",
        _is("device", "cpu"),
        "on CPU time is the constraint: a frozen forward pass runs once (cached) and costs ~3x less than a "
        "training step; last-k stops the backward pass after k layers (measured here: 192 vs 84 examples/s)",
    ),
    Rule(
        "device=cpu:backward-anyway",
        "device",
        _is("device", "cpu"),
        "on CPU, LoRA/BitFit save memory and artifact size but little time: the backward pass still "
        "runs through every layer",
        "peft issues #925, #664; measured here: LoRA 70 vs full 84 examples/s on MiniLM-L6",
    ),
    Rule(
        "device=cuda",
        "device",
        _is("device", "cuda"),
        "on a GPU, fine-tuning a small encoder takes minutes: time rarely decides, memory may",
    ),
)


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


def candidates() -> dict[str, dict[str, float]]:
    """The strategies `advise` proposes (those with hints), in registry order -> their score per rule."""
    return {name: cls.hints.advice for name, cls in STRATEGIES.items() if cls.hints is not None}


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
    s = Situation(train_size, task, device, budget_minutes, gap, memory_gb, params_m)
    _check(s)
    advice = candidates()
    picks = {
        name: Pick(name, minutes=estimate_minutes(name, train_size, device, params_m)) for name in advice
    }
    notes: list[Reason] = []
    for rule in RULES:
        if not rule.when(s):
            continue
        text = rule.text.format(s=s)
        for name, pick in picks.items():
            effect = advice[name].get(rule.id, 0)
            if effect:
                pick.score += effect
                pick.reasons.append(Reason(rule.input, s.shown(rule.input), text, rule.source, effect))
        if rule.note:
            notes.append(Reason(rule.input, s.shown(rule.input), rule.note))
    if budget_minutes is not None:
        for p in picks.values():
            if p.minutes > budget_minutes:
                p.score += OVER_BUDGET
                p.reasons.append(
                    Reason(
                        "budget_minutes",
                        f"{budget_minutes:g}",
                        f"estimated {p.minutes:.1f} min on {device} exceeds the budget",
                        effect=OVER_BUDGET,
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
    return Advice(asdict(s), head, [p for p in ranked if p not in head], notes)


def _check(s: Situation) -> None:
    if not isinstance(s.train_size, int) or s.train_size < 1:
        raise TunebenchError(
            f"--train-size {s.train_size}: give the number of labelled training examples (>= 1)"
        )
    if s.task not in task_choices():
        raise TunebenchError(f"--task {s.task}: choose from {', '.join(task_choices())}")
    if s.device not in DEVICES:
        raise TunebenchError(f"--device {s.device}: choose cpu or cuda")
    if s.gap not in GAPS:
        raise TunebenchError(f"--gap {s.gap}: choose small, medium or large")
    if s.budget_minutes is not None and s.budget_minutes <= 0:
        raise TunebenchError(f"--budget-minutes {s.budget_minutes}: must be > 0")
    if s.memory_gb is not None and s.memory_gb <= 0:
        raise TunebenchError(f"--memory-gb {s.memory_gb}: must be > 0")
