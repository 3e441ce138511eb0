"""Domain gap: how far is this data from what the backbone knows, or from a reference corpus?

A large gap is the case for domain-adaptive pre-training or fine-tuning the whole model; a small one
says frozen features and light strategies should transfer.

Signals, thresholds and why (small < first threshold <= medium < second threshold <= large)
------------------------------------------------------------------------------------------
Tokenizer signals are measured on the target's train split. A "word" is a chunk between whitespace,
hyphens or slashes ("coming-of-age" is three known words) with its edge punctuation stripped (pure
punctuation is not a word); its pieces are the tokens inside it that hold a letter or digit (the
apostrophe of "don't" is not a vocabulary gap). So raw text and pre-tokenized text such as SST-2's
("great , ", "does n't") give comparable numbers. Tokens are counted in context and untruncated; the
unknown-token rate counts all of them, punctuation included.

- fertility, sub-word tokens per word: 1.3 / 1.6. General English gives about 1.1-1.2 with
  BERT-style WordPiece vocabularies (MiniLM: SST-2 1.14, IMDB 1.10); specialised text (biomedical,
  legal, social media) is typically higher and code or other languages far higher. Rust et al.
  (2021) relate high fertility to worse downstream scores.
- share of words split into 3 or more pieces: 5% / 12% (MiniLM: SST-2 3.9%, its evaluative words
  such as con|##tri|##ved; IMDB 2.0%). 12% means one word in eight is spelled out of fragments, as in
  chemistry, medicine or identifiers, where a domain vocabulary (SciBERT-style) pays off.
- unknown-token rate, [UNK] per token: 0.5% / 2%. WordPiece and byte-level BPE almost never emit UNK
  on English; more than 1 token in 200 means characters the model has never seen (emoji, other
  scripts), which it reads as one identical blank.

With `--reference` (a named dataset's train file, or a file), target versus reference:

- vocabulary overlap of the most frequent unigrams (lower-cased; stopwords, one-letter tokens and
  markup removed), the measure Gururangan et al. (2020) use to compare domains:
  |top-k(target) & top-k(reference)| / k, k = 10,000 or the smaller vocabulary. Both corpora are cut
  to the same number of words, and the overlap is divided by the overlap of two disjoint halves of
  the reference of that same size: the in-domain overlap, well below 1 for small samples, so the
  relative overlap does not depend on sample size the way the raw one does. Level: relative 0.65 /
  0.4, smaller is worse. Gururangan et al. find the largest gains from domain-adaptive pre-training
  for the domains with the lowest overlap with the pre-training corpus (biomedical, computer
  science: about 20-30%) and the smallest for news (about 55%). Measured (MiniLM, train sizes
  below): SST-2 vs IMDB 0.38 / 0.42 = 0.91; IMDB vs SST-2 0.52 / 0.82 = 0.64 (SST-2's train phrases
  are cut from shared sentences, which inflates its in-reference overlap); SST-2 vs STS-B sentences
  (captions, headlines, forums) 0.51.
- embedding distance: MMD^2 (biased V-statistic) between the mean-pooled last-layer embeddings of
  n <= 1000 target and n reference texts, scaled to unit length; RBF kernel exp(-d^2 / 2 sigma^2),
  sigma the median pairwise distance of all samples (median heuristic). The baseline is the same
  statistic, same kernel, between two disjoint halves (n each) of the reference: the floor that
  sampling alone produces. Reported: MMD^2, baseline, their ratio, and the excess MMD^2 - baseline,
  which estimates the population MMD^2 (the floor shrinks as 1/n, so the ratio grows with n and the
  excess does not). Level: small when the ratio is below 2 (not clearly above sampling noise), else
  by the excess: 0.03 / 0.10. For roughly Gaussian data under the median heuristic, a population
  MMD^2 is about 0.3 x (between-domain / within-domain variance): 0.03 is a shift of ~10% of the
  embedding spread, 0.10 of ~30%, which a linear classifier would largely separate.
  Unit length because a mean over more tokens is a shorter vector (MiniLM: norm 5.1 for SST-2
  phrases, 1.8 for IMDB reviews), so raw distances measure text length more than content (raw: SST-2
  vs IMDB 0.26, vs STS-B 0.04), and sentence encoders compare by cosine anyway. Measured (MiniLM,
  n = 1000): SST-2 vs IMDB 0.057, IMDB vs SST-2 0.056, SST-2 vs STS-B 0.047; SST-2 dev sentences vs
  train phrases 0.010; two samples of SST-2 train 0.000.

Verdict: the largest level among the signals (each signal's level is shown, so one sees which set
it). When the vocabulary is shared but the embeddings differ, a note says the gap is one of form
(length, style) rather than topic. Two numbers are reported but left out of the verdict: the share
of texts truncated at the model's maximum length (a length mismatch, not a domain one; it hurts
every strategy alike), and the frozen probe score (last layer, mean pooling, logistic regression
with C chosen on dev), which mixes domain fit with the difficulty of the task.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np

from ..errors import TunebenchError

log = logging.getLogger("tunebench")

LEVELS = ("small", "medium", "large")
# signal -> (medium from, large from, larger is worse)
THRESHOLDS = {
    "fertility": (1.3, 1.6, True),
    "split_3plus": (0.05, 0.12, True),
    "unk_rate": (0.005, 0.02, True),
    "vocab_overlap_relative": (0.65, 0.4, False),
    "mmd_excess": (0.03, 0.10, True),
}
MMD_NOISE_RATIO = 2.0  # below this ratio to the within-reference baseline the distance is noise
TOP_K = 10_000

STOPWORDS = frozenset(
    """a about above after again against ain't all also am an and any are aren't as at be because been
    before being below between both but by can can't cannot could couldn't did didn't do does doesn't
    doing don't down during each even few for from further get got had hadn't has hasn't have haven't
    having he he'd he'll he's her here here's hers herself him himself his how how's i i'd i'll i'm
    i've if in into is isn't it it's its itself just let's like me more most much must mustn't my
    myself n't no nor not now of off on once one only or other ought our ours ourselves out over own
    really same shan't she she'd she'll she's should shouldn't so some such than that that's the
    their theirs them themselves then there there's these they they'd they'll they're they've this
    those through to too under until up upon us very was wasn't we we'd we'll we're we've were
    weren't what what's when when's where where's which while who who's whom why why's will with
    won't would wouldn't yet you you'd you'll you're you've your yours yourself yourselves br""".split()
)

_CHUNK = re.compile(r"[^\s\-/\u2013\u2014]+")  # hyphens and slashes separate words too
_EDGE_PUNCT = re.compile(r"^[\W_]*(.*?)[\W_]*$", re.S)
_MARKUP = re.compile(r"<[^>]{0,40}>")  # <br />, <i>: IMDB-style markup is not vocabulary
_UNIGRAM = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")


# ----------------------------------------------------------------------------- tokenizer


def word_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of the words: chunks between whitespace, hyphens or slashes, without their
    edge punctuation."""
    spans = []
    for m in _CHUNK.finditer(text):
        inner = _EDGE_PUNCT.match(m.group())
        if inner.group(1):
            spans.append((m.start() + inner.start(1), m.start() + inner.end(1)))
    return spans


def tokenizer_stats(tokenizer, texts: list[str], max_length: int, pairs: list[str] | None = None) -> dict:
    """Fertility, unknown-token rate, share of words in >= 3 pieces, share of inputs truncated."""
    fast = getattr(tokenizer, "is_fast", False)
    enc = tokenizer(
        list(texts), add_special_tokens=False, truncation=False, return_offsets_mapping=fast, verbose=False
    )
    unk_id = tokenizer.unk_token_id
    tokens = unk = words = pieces = split3 = 0
    for i, (text, ids) in enumerate(zip(texts, enc["input_ids"])):
        tokens += len(ids)
        unk += sum(t == unk_id for t in ids) if unk_id is not None else 0
        spans = word_spans(text)
        if fast:  # pieces that are only punctuation (the ' of don't) are not vocabulary gaps
            offsets = [(a, b) for a, b in enc["offset_mapping"][i] if _has_alnum(text[a:b])]
            counts = _pieces_per_word(spans, offsets)
        else:  # slow tokenizers have no offsets: tokenize each word on its own
            counts = [sum(map(_has_alnum, tokenizer.tokenize(text[a:b]))) for a, b in spans]
        words += len(counts)
        pieces += sum(counts)
        split3 += sum(c >= 3 for c in counts)
    lengths = [len(ids) for ids in enc["input_ids"]]
    if pairs is not None:
        pair_ids = tokenizer(list(pairs), add_special_tokens=False, truncation=False, verbose=False)
        lengths = [a + len(b) for a, b in zip(lengths, pair_ids["input_ids"])]
    special = tokenizer.num_special_tokens_to_add(pair=pairs is not None)
    return {
        "texts": len(texts),
        "words": words,
        "tokens": tokens,
        "fertility": pieces / max(words, 1),
        "unk_rate": unk / max(tokens, 1),
        "split_3plus": split3 / max(words, 1),
        "truncated_share": sum(n + special > max_length for n in lengths) / max(len(lengths), 1),
    }


def _has_alnum(piece: str) -> bool:
    return any(ch.isalnum() for ch in piece)


def _pieces_per_word(spans: list[tuple[int, int]], offsets: list[tuple[int, int]]) -> list[int]:
    """Tokens overlapping each word span; both lists are in text order (two pointers)."""
    counts, j = [], 0
    for start, end in spans:
        while j < len(offsets) and offsets[j][1] <= start:
            j += 1
        k = j
        while k < len(offsets) and offsets[k][0] < end:
            k += 1
        counts.append(k - j)
    return counts


# ----------------------------------------------------------------------------- vocabulary


def unigrams(text: str) -> list[str]:
    """Lower-cased word unigrams without markup, stopwords and one-letter tokens."""
    text = _MARKUP.sub(" ", text.lower().replace("\u2019", "'"))
    return [w for w in _UNIGRAM.findall(text) if len(w) > 1 and w not in STOPWORDS]


def vocab_overlap(a: list[list[str]], b: list[list[str]], k: int = TOP_K) -> tuple[float, int]:
    """(|top-k(a) & top-k(b)| / k, k), k capped by the smaller vocabulary; a, b: unigrams per text."""
    ca, cb = Counter(w for doc in a for w in doc), Counter(w for doc in b for w in doc)
    k = min(k, len(ca), len(cb))
    if k == 0:
        return 0.0, 0

    def top(c: Counter) -> set[str]:
        return {w for w, _ in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:k]}  # ties: by word

    return len(top(ca) & top(cb)) / k, k


def _take_words(docs: list[list[str]], budget: int, start: int = 0) -> tuple[list[list[str]], int]:
    """Consecutive docs from `start` until they hold `budget` words; returns them and the next index."""
    taken, n, i = [], 0, start
    while i < len(docs) and n < budget:
        taken.append(docs[i])
        n += len(docs[i])
        i += 1
    return taken, i


def vocabulary_gap(target: list[str], reference: list[str], rng: np.random.Generator) -> dict:
    """Overlap target vs reference and its in-reference baseline, on equal numbers of words."""
    t_docs = [unigrams(t) for t in (target[i] for i in rng.permutation(len(target)))]
    budget = sum(map(len, t_docs))
    r_docs, r_words = [], 0
    for i in rng.permutation(len(reference)):  # only as much of a big reference as two budgets need
        if r_words >= 2 * budget:
            break
        r_docs.append(unigrams(reference[i]))
        r_words += len(r_docs[-1])
    budget = min(budget, r_words // 2)
    t_part, _ = _take_words(t_docs, budget)
    r1, nxt = _take_words(r_docs, budget)
    r2, _ = _take_words(r_docs, budget, nxt)
    overlap, k = vocab_overlap(t_part, r1)
    baseline, _ = vocab_overlap(r1, r2, k)
    return {
        "overlap": overlap,
        "baseline": baseline,
        "relative": overlap / baseline if baseline > 0 else 0.0,
        "k": k,
        "words_per_corpus": budget,
    }


# ----------------------------------------------------------------------------- embeddings


def _sq_dists(Z: np.ndarray) -> np.ndarray:
    sq = (Z * Z).sum(1)
    return np.maximum(sq[:, None] + sq[None, :] - 2 * Z @ Z.T, 0.0)  # (N, N)


def median_sigma2(Z: np.ndarray) -> float:
    """Median heuristic: the squared median pairwise distance (off-diagonal pairs)."""
    d2 = _sq_dists(Z.astype(np.float64))
    return float(np.median(d2[np.triu_indices(len(Z), 1)])) or 1.0


def mmd2(X: np.ndarray, Y: np.ndarray, sigma2: float) -> float:
    """Biased MMD^2 (V-statistic) with k(x, y) = exp(-|x - y|^2 / (2 sigma2)); 0 for X == Y."""
    n = len(X)
    K = np.exp(-_sq_dists(np.concatenate([X, Y]).astype(np.float64)) / (2 * sigma2))
    return float(K[:n, :n].mean() + K[n:, n:].mean() - 2 * K[:n, n:].mean())


def sentence_embeddings(pools: np.ndarray) -> np.ndarray:
    """(N, L+1, 2, H) cached pools -> (N, H) last-layer mean-pooled vectors scaled to unit length."""
    from ..extract import select

    X = select(pools, "mean", "last").astype(np.float64)
    return X / np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)


def embedding_gap(target: np.ndarray, ref_a: np.ndarray, ref_b: np.ndarray) -> dict:
    """MMD^2 target vs reference half A, and the baseline A vs B, under one median-heuristic kernel."""
    sigma2 = median_sigma2(np.concatenate([target, ref_a, ref_b]))
    dist, base = mmd2(target, ref_a, sigma2), mmd2(ref_a, ref_b, sigma2)
    return {
        "mmd2": dist,
        "baseline": base,
        "ratio": dist / base if base > 0 else float("inf"),
        "excess": dist - base,
        "sigma": sigma2**0.5,
        "n": len(target),
    }


# ----------------------------------------------------------------------------- verdict


def level(signal: str, value: float) -> str:
    medium, large, worse_up = THRESHOLDS[signal]
    if worse_up:
        return LEVELS[(value >= medium) + (value >= large)]
    return LEVELS[(value <= medium) + (value <= large)]


def threshold_text(signal: str) -> str:
    medium, large, worse_up = THRESHOLDS[signal]
    pct = signal in ("split_3plus", "unk_rate")

    def f(v: float) -> str:
        return f"{v:.1%}" if pct else f"{v:g}"

    if worse_up:
        return f"< {f(medium)} · {f(medium)}-{f(large)} · ≥ {f(large)}"
    return f"> {f(medium)} · {f(large)}-{f(medium)} · ≤ {f(large)}"


def verdict(signals: list[dict]) -> tuple[str, list[str]]:
    """The largest level among the signals, and the names of the signals at that level."""
    worst = max((LEVELS.index(s["level"]) for s in signals), default=0)
    return LEVELS[worst], [s["name"] for s in signals if LEVELS.index(s["level"]) == worst]


def _signal(name: str, label: str, value: float, lvl: str | None = None, **extra) -> dict:
    return {
        "name": name,
        "label": label,
        "value": value,
        "level": lvl or level(name, value),
        "thresholds": threshold_text(name),
        **extra,
    }


# ----------------------------------------------------------------------------- reference corpus


def load_reference(reference: str, data_dir: str | None, text_col: str | None) -> tuple[str, list[str]]:
    """(source, texts) of a named dataset's train file or of a table file; text column auto-detected."""
    from ..data import DATASETS, dataset_names, get_dataset, load_table, locate
    from ..data.text import TEXT_COLUMNS

    if reference in DATASETS and not os.path.isfile(reference):
        ds = get_dataset(reference)
        path = locate(ds, data_dir)["train"]
        text_col = text_col or ds.columns.get("text")
    elif os.path.isfile(reference):
        path = reference
    else:
        raise TunebenchError(
            f"--reference {reference}: no such file and not a named dataset "
            f"({', '.join(dataset_names('text-classification'))}); give a dataset name or the path of a "
            "csv/tsv/jsonl/parquet file"
        )
    table = load_table(path)
    cols = list(table.columns)
    if text_col is None:
        lower = {c.lower(): c for c in cols}
        found = [lower[c] for c in TEXT_COLUMNS if c in lower]
        strings = [c for c in cols if any(isinstance(v, str) for v in table.columns[c][:50])]
        text_col = found[0] if found else (strings[0] if len(strings) == 1 else None)
        if text_col is None:
            raise TunebenchError(
                f"{path}: cannot tell which column holds the text (columns: {', '.join(cols)}); "
                "choose one with --reference-text-col NAME"
            )
    elif text_col not in table.columns:
        raise TunebenchError(
            f"{path}: no column '{text_col}'; columns are: {', '.join(cols)}; "
            "choose one with --reference-text-col NAME"
        )
    texts = [v for v in table.columns[text_col] if isinstance(v, str) and v.strip()]
    if len(texts) < 20:
        raise TunebenchError(
            f"{path}: column '{text_col}' has {len(texts)} non-empty texts; the reference needs at least 20"
        )
    return str(path), texts


# ----------------------------------------------------------------------------- the analysis


def domain_gap(
    data_cfg,
    reference: str | None = None,
    model: str = "minilm",
    out: str | Path = "tunebench-out",
    *,
    reference_text_col: str | None = None,
    data_dir: str | None = None,
    sample_size: int = 1000,
    max_length: int | None = None,
    batch_size: int = 128,
    device: str = "auto",
    precision: str = "auto",
    seed: int = 0,
    trust_remote_code: bool = False,
    show: bool = True,
) -> dict:
    """Tokenizer signals, frozen probe score and (with `reference`) vocabulary and embedding distance.

    Writes `out/gap.json` and returns the same dict. `data_cfg` is a DataConfig or a dataset name/path.
    """
    from ..data import DataConfig
    from .probe import frozen_features, load_inputs

    t0 = time.perf_counter()
    out = Path(out)
    if isinstance(data_cfg, str):
        data_cfg = DataConfig(data=data_cfg)
    if sample_size < 10:
        raise TunebenchError(f"--sample-size {sample_size}: must be >= 10")
    ref = None  # check the reference before loading anything heavy: a typo fails at once
    if reference is not None:
        ref = load_reference(reference, data_dir or data_cfg.data_dir, reference_text_col)
    bundle, backbone, task, limit = load_inputs(data_cfg, model, max_length, trust_remote_code)
    log.info("%s · model %s (max length %d)", bundle.describe(), backbone.name, limit)
    extract = {"batch_size": batch_size, "device": device, "precision": precision}

    tok = tokenizer_stats(backbone.tokenizer, bundle.train.texts, limit, bundle.train.text_pairs)
    pools, extract_s = frozen_features(bundle, backbone, task, limit, out, ("train", "dev"), **extract)
    result = {
        "data": bundle.name,
        "data_fingerprint": bundle.fingerprint(),
        "model": backbone.name,
        "max_length": limit,
        "tokenizer": tok,
        "frozen_probe": _frozen_probe(bundle, pools, backbone.num_layers, seed),
        "reference": None,
    }
    signals = [
        _signal("fertility", "fertility (tokens per word)", tok["fertility"]),
        _signal("split_3plus", "words in ≥3 pieces", tok["split_3plus"]),
        _signal("unk_rate", "unknown-token rate", tok["unk_rate"]),
    ]
    notes = []
    if tok["truncated_share"] > 0.1:
        notes.append(
            f"{tok['truncated_share']:.0%} of the texts are longer than {limit} tokens: the model "
            "sees only their beginning (every strategy alike)"
        )
    if ref is not None:
        rng = np.random.default_rng(seed)
        vocab = vocabulary_gap(bundle.train.texts, ref[1], rng)
        target_emb, ref_emb, seconds = _embeddings(
            ref[1], bundle.train, pools["train"], backbone, task, limit, out, extract, sample_size, rng
        )
        extract_s += seconds
        n = len(target_emb)
        emb = embedding_gap(target_emb, ref_emb[:n], ref_emb[n:])
        lengths = {"target": _words_per_text(bundle.train.texts), "reference": _words_per_text(ref[1])}
        result["reference"] = {
            "name": reference,
            "source": ref[0],
            "texts": len(ref[1]),
            "words_per_text": lengths,
        }
        result["vocabulary"], result["embedding"] = vocab, emb
        vocab_signal = _signal(
            "vocab_overlap_relative", "vocabulary overlap / in-reference", vocab["relative"]
        )
        mmd_level = "small" if emb["ratio"] < MMD_NOISE_RATIO else None  # not clearly above sampling noise
        mmd_signal = _signal("mmd_excess", "embedding MMD² − baseline", emb["excess"], mmd_level)
        signals += [vocab_signal, mmd_signal]
        if n < 200:
            notes.append(f"only {n} texts per sample: the embedding distance is noisy")
        if bundle.train.text_pairs is not None:
            notes.append("the target has text pairs: only their first texts are compared with the reference")
        if vocab_signal["level"] == "small" and mmd_signal["level"] != "small":
            notes.append(_form_note(vocab["relative"], lengths))

    result["signals"] = signals
    result["verdict"], result["verdict_by"] = verdict(signals)
    result["notes"] = notes
    result["seconds"] = {"extract": round(extract_s, 2), "total": round(time.perf_counter() - t0, 2)}
    out.mkdir(parents=True, exist_ok=True)
    (out / "gap.json").write_text(json.dumps(result, indent=2) + "\n")
    if show:
        print_table(result)
    log.info("wrote %s", out / "gap.json")
    return result


def _frozen_probe(bundle, pools: dict[str, np.ndarray], num_layers: int, seed: int) -> dict:
    """Last layer, mean pooling, logistic regression with C chosen on dev: its dev accuracy."""
    from ..extract import select
    from .probe import fit_probe, majority_share

    y, y_dev = np.asarray(bundle.train.labels), np.asarray(bundle.dev.labels)
    X, X_dev = select(pools["train"], "mean", "last"), select(pools["dev"], "mean", "last")
    probe = fit_probe(X, y, X_dev, y_dev, seed)
    return {
        "layer": num_layers,
        "pooling": "mean",
        "dev_accuracy": float((probe.decision_function(X_dev).argmax(1) == y_dev).mean()),
        "majority": majority_share(y, y_dev),
        "C": probe.C_,
    }


def _embeddings(ref_texts, train, train_pools, backbone, task, limit, out, extract, sample_size, rng):
    """(n target, 2n reference unit embeddings, forward-pass seconds); both through the feature cache."""
    from ..data import TextSplit
    from ..extract import FrozenSource

    source = FrozenSource(backbone, out, limit, **extract)
    n = min(sample_size, len(train), len(ref_texts) // 2)
    ref_split = TextSplit(
        [ref_texts[i] for i in rng.choice(len(ref_texts), 2 * n, replace=False)], [0] * (2 * n)
    )
    ref_pools = source.pools(task.encode(backbone, ref_split, limit).rows)
    if train.text_pairs is not None:  # the reference has single texts: embed the target's alike
        rows = task.encode(backbone, TextSplit(train.texts, train.labels), limit).rows
        train_pools = source.pools(rows)
    target = sentence_embeddings(train_pools)[rng.choice(len(train), n, replace=False)]
    return target, sentence_embeddings(ref_pools), source.seconds


def _words_per_text(texts: list[str]) -> float:
    return float(np.mean([len(t.split()) for t in texts]))


def _form_note(relative: float, lengths: dict[str, float]) -> str:
    """Shared words, distant embeddings: say that the difference is form rather than topic."""
    a, b = lengths["target"], lengths["reference"]
    why = (
        f"texts average {a:.0f} words here and {b:.0f} in the reference, so the gap is mostly one of "
        "form (length, structure), not topic"
        if max(a, b) > 2 * min(a, b)
        else "the difference is one of style or register more than topic"
    )
    return f"the vocabulary is shared ({relative:.2f} of the in-reference overlap) but the embeddings differ: {why}"


def print_table(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    ref = result["reference"]
    title = f"domain gap: {result['data']}" + (f" vs {Path(ref['name']).name}" if ref else "")
    table = Table(title=f"{title} · {result['model']}")
    for col, just in (("signal", "left"), ("value", "right"), ("small · medium · large", "left")):
        table.add_column(col, justify=just)
    table.add_column("level")
    colors = {"small": "green", "medium": "yellow", "large": "red"}
    for s in result["signals"]:
        pct = s["name"] in ("split_3plus", "unk_rate")
        value = f"{s['value']:.2%}" if pct else f"{s['value']:.3f}"
        if s["name"] == "vocab_overlap_relative":
            v = result["vocabulary"]
            value += f" ({v['overlap']:.2f} / {v['baseline']:.2f}, top {v['k']})"
        if s["name"] == "mmd_excess":
            e = result["embedding"]
            value += f" (MMD² {e['mmd2']:.4f}, {e['ratio']:.1f}× baseline {e['baseline']:.4f})"
        table.add_row(s["label"], value, s["thresholds"], f"[{colors[s['level']]}]{s['level']}[/]")
    tok, frozen = result["tokenizer"], result["frozen_probe"]
    table.add_row(
        f"truncated at {result['max_length']} tokens", f"{tok['truncated_share']:.1%}", "not in verdict", "—"
    )
    table.add_row(
        "frozen probe (last layer, mean)",
        f"{frozen['dev_accuracy']:.3f} (majority {frozen['majority']:.3f})",
        "not in verdict",
        "—",
    )
    console = Console()
    console.print(table)
    lvl = result["verdict"]
    by = "every signal is small" if lvl == "small" else "set by " + ", ".join(result["verdict_by"])
    console.print(f"verdict: [bold {colors[lvl]}]{lvl} gap[/] ({by})")
    for note in result["notes"]:
        console.print(f"note: {note}")
