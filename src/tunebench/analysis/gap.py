"""Domain gap: how far is this data from what the backbone knows, or from a reference corpus?

A large gap is the case for domain-adaptive pre-training or fine-tuning the whole model; a small one
says frozen features and light strategies should transfer.

This module loads the data (and the reference corpus), runs the analysis and writes gap.json; the
measurements are in gap_metrics.py, the levels, verdict and table in gap_verdict.py.

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
import time
from pathlib import Path

import numpy as np

from ..data import DATASETS, DataConfig, TextSplit, dataset_names, get_dataset, load_table, locate
from ..data.text import TEXT_COLUMNS
from ..errors import TunebenchError
from ..extract import FrozenSource, select
from .frozen import DEFAULT_TASK, fit_probe, frozen_features, load_inputs, majority_share
from .gap_metrics import (
    embedding_gap,
    median_sigma2,
    mmd2,
    sentence_embeddings,
    tokenizer_stats,
    unigrams,
    vocab_overlap,
    vocabulary_gap,
    word_spans,
)
from .gap_verdict import (
    LEVELS,
    MMD_NOISE_RATIO,
    THRESHOLDS,
    form_note,
    level,
    make_signal,
    print_table,
    verdict,
)

# The names tests and callers import from `tunebench.analysis.gap`, wherever they are defined.
__all__ = [
    "LEVELS",
    "MMD_NOISE_RATIO",
    "THRESHOLDS",
    "domain_gap",
    "embedding_gap",
    "level",
    "load_reference",
    "median_sigma2",
    "mmd2",
    "print_table",
    "tokenizer_stats",
    "unigrams",
    "verdict",
    "vocab_overlap",
    "word_spans",
]

log = logging.getLogger("tunebench")


def load_reference(reference: str, data_dir: str | None, text_col: str | None) -> tuple[str, list[str]]:
    """(source, texts) of a named dataset's train file or of a table file; text column auto-detected."""
    if reference in DATASETS and not os.path.isfile(reference):
        ds = get_dataset(reference)
        path = locate(ds, data_dir)["train"]
        text_col = text_col or ds.columns.get("text")
    elif os.path.isfile(reference):
        path = reference
    else:
        raise TunebenchError(
            f"--reference {reference}: no such file and not a named dataset "
            f"({', '.join(dataset_names(DEFAULT_TASK))}); give a dataset name or the path of a "
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
        make_signal("fertility", "fertility (tokens per word)", tok["fertility"]),
        make_signal("split_3plus", "words in ≥3 pieces", tok["split_3plus"]),
        make_signal("unk_rate", "unknown-token rate", tok["unk_rate"]),
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
        vocab_signal = make_signal(
            "vocab_overlap_relative", "vocabulary overlap / in-reference", vocab["relative"]
        )
        mmd_level = "small" if emb["ratio"] < MMD_NOISE_RATIO else None  # not clearly above sampling noise
        mmd_signal = make_signal("mmd_excess", "embedding MMD² − baseline", emb["excess"], mmd_level)
        signals += [vocab_signal, mmd_signal]
        if n < 200:
            notes.append(f"only {n} texts per sample: the embedding distance is noisy")
        if bundle.train.text_pairs is not None:
            notes.append("the target has text pairs: only their first texts are compared with the reference")
        if vocab_signal["level"] == "small" and mmd_signal["level"] != "small":
            notes.append(form_note(vocab["relative"], lengths))

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
