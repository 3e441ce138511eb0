"""The feature-columns experiment of the README: SST-2 sentences plus two made-up columns whose worth is
known in advance, text-only vs metadata-only vs fused per strategy.

    python scripts/metadata_experiment.py --data-dir ../shared/data --out runs/metadata

The semi-synthetic set (seeded, rebuilt identically on every run): every SST-2 row gets
  source  categorical "A"/"B", equal to the label's letter (1 -> "A", 0 -> "B") with probability p and
          the other letter otherwise, drawn independently of the text;
  noise   numeric, standard normal, independent of everything.
Train is SST-2's training file (2,000 rows drawn by --train-size, stratified), dev its dev file, test
the labelled test file. Configurations: text only (no columns); noise only (`--feature-cols noise`,
which must not hurt); and p = 0.6, 0.8 (`--feature-cols source,noise`). Each runs the strategies plus,
with columns, the `metadata` baseline (the columns alone).

Expected accuracy with the cue: the text-only run's test probabilities, calibrated on dev by temperature
scaling, combined with the cue by Bayes' rule (the cue is independent of the text given the label, so
its log-odds log(p / (1 - p)) add to the text's): what a fused model reaches in expectation. The metadata baseline's
expected accuracy is p. Writes OUT/metadata.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import random
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file

import tunebench
from tunebench.data import DataConfig, load_table
from tunebench.estimators import softmax


def write_split(src: Path, dest: Path, p: float, seed: int) -> tuple[list[int], list[str]]:
    """`src` (sentence, label) with `source_<p>` columns for every p and `noise`; returns (labels, cues)."""
    table = load_table(src)
    rng = random.Random(seed)
    labels = [int(v) for v in table.columns["label"]]
    with open(dest, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["sentence", "label", "source", "noise"])
        cues = []
        for text, y in zip(table.columns["sentence"], labels):
            right = "A" if y == 1 else "B"
            cue = right if rng.random() < p else ("B" if right == "A" else "A")
            cues.append(cue)
            w.writerow([text, y, cue, f"{rng.gauss(0, 1):.4f}"])
    return labels, cues


def build(data_dir: Path, out: Path, p: float) -> tuple[dict[str, str], dict]:
    """The three files for cue accuracy `p` (seeded by p); returns (paths, test labels and cues)."""
    folder = out / "data" / f"p{p:g}"
    folder.mkdir(parents=True, exist_ok=True)
    sources = {
        "train": data_dir / "sst2" / "train.tsv.gz",
        "dev": data_dir / "sst2" / "dev.tsv",
        "test": data_dir / "sst2" / "test_labeled.tsv",
    }
    paths, test = {}, {}
    for i, (split, src) in enumerate(sources.items()):
        paths[split] = str(folder / f"{split}.csv")
        labels, cues = write_split(src, Path(paths[split]), p, seed=1000 * i + round(100 * p))
        if split != "train":
            test[split] = {"labels": np.asarray(labels), "cues": cues}
    return paths, test


def log_odds(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    probs = softmax(logits / temperature)
    return np.log(probs[:, 1] + 1e-12) - np.log(probs[:, 0] + 1e-12)


def calibrate(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature that minimises the dev NLL (Guo et al. 2017), searched on a log grid."""
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 400))
    nll = [-np.log(softmax(logits / t)[np.arange(len(labels)), labels] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(nll))])


def expected_with_cue(run_dir: Path, splits: dict, p: float) -> float:
    """Test accuracy of the text-only run's probabilities, calibrated on dev (temperature scaling), with
    the cue's log-odds log(p / (1 - p)) added: Bayes' rule for a cue independent of the text."""
    outputs = load_file(str(run_dir / "predictions.safetensors"))
    t = calibrate(outputs["dev"], splits["dev"]["labels"])
    test = splits["test"]
    cue = np.where(np.asarray(test["cues"]) == "A", 1.0, -1.0) * math.log(p / (1 - p))
    return float((((log_odds(outputs["test"], t) + cue) > 0).astype(int) == test["labels"]).mean())


def run(data_dir: Path, out: Path, ps: list[float], strategies: list[str], train_size: int) -> list[dict]:
    results = []
    text_runs = {}
    for p in [None, *ps]:  # None: text only and noise only, on the p = 0.8 files (the noise is the same)
        paths, test = build(data_dir, out, p or 0.8)
        configs = (
            {"text only": None, "noise column only": "noise"} if p is None else {f"p={p:g}": "source,noise"}
        )
        for config, cols in configs.items():
            data = DataConfig(
                paths["train"], dev=paths["dev"], test=paths["test"], train_size=train_size, feature_cols=cols
            )
            names = strategies if cols is None or cols == "noise" else ["metadata", *strategies]
            rows = tunebench.compare(data, strategies=names, out=out / "runs", show=False)
            for r in rows.records:
                if r["status"] != "ok":
                    logging.warning("%s %s: %s", config, r["strategy"], r["status"])
                    continue
                run_dir = out / "runs" / "runs" / r["key"]
                entry = {
                    "config": config,
                    "strategy": r["strategy"],
                    "dev_accuracy": r["dev_metrics"]["accuracy"],
                    "test_accuracy": r["test_metrics"]["accuracy"],
                    "seconds": r["wall_seconds"],
                }
                if config == "text only":
                    text_runs[r["strategy"]] = run_dir
                elif p is not None and r["strategy"] in text_runs:
                    entry["expected"] = expected_with_cue(text_runs[r["strategy"]], test, p)
                elif p is not None:
                    entry["expected"] = p  # metadata alone: the cue is right with probability p
                results.append(entry)
    return results


def table(results: list[dict], ps: list[float]) -> str:
    configs = ["text only", "noise column only", *[f"p={p:g}" for p in ps]]
    by = {(r["strategy"], r["config"]): r for r in results}
    head = "| strategy | text only | + noise column |" + "".join(
        f" p={p:g}: expected | p={p:g}: fused |" for p in ps
    )
    lines = [head, "|---" * (3 + 2 * len(ps)) + "|"]
    strategies = list(dict.fromkeys(r["strategy"] for r in results))
    for s in ["metadata", *[n for n in strategies if n != "metadata"]]:
        cells = []
        for c in configs[:2]:
            cells.append(f"{by[(s, c)]['test_accuracy']:.4f}" if (s, c) in by else "–")
        for c in configs[2:]:
            r = by.get((s, c))
            cells += ["–", "–"] if r is None else [f"{r['expected']:.4f}", f"{r['test_accuracy']:.4f}"]
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--out", default="runs/metadata")
    p.add_argument("--p", nargs="+", type=float, default=[0.6, 0.8], help="how often the cue is right")
    p.add_argument("--strategies", nargs="+", default=["features", "head", "full", "lora"])
    p.add_argument("--train-size", type=int, default=2000)
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(a.out)
    results = run(Path(a.data_dir), out, a.p, a.strategies, a.train_size)
    (out / "metadata.json").write_text(json.dumps(results, indent=1))
    print(table(results, a.p))


if __name__ == "__main__":
    main()
