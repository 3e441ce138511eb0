"""The measurements behind `tunebench gap` (their definitions, thresholds and sources are in gap.py's
docstring): tokenizer statistics of the target (fertility, unknown tokens, words in many pieces,
truncation), vocabulary overlap of two corpora on equal word budgets, and the MMD between two sets of
unit-length sentence embeddings with its within-reference baseline. Pure functions, no I/O."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from ..extract import select

TOP_K = 10_000  # most frequent unigrams compared per corpus

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
