"""The forgetting experiment of the README: what L2-SP, EWC and replay keep while SST-2 is learned.

SST-2 full fine-tuning (2,000 training sentences) with nothing against forgetting, with L2-SP (`--l2sp`:
a penalty toward the pre-trained weights), with EWC (`--ewc`: the same penalty weighted by the diagonal
Fisher of the pooled embedding on a reference corpus) and with replay (`--replay`: original-domain text
trained jointly, distilled toward the original model's embeddings); the target accuracy beside what the
backbone keeps elsewhere: STS-B Spearman of cosine similarities of its mean-pooled embeddings
(`tunebench forgetting --data stsb`), the original model's score vs the fine-tuned one's.

EWC's reference corpus and the replay corpus are the same 5,000 CoNLL-2003 training sentences (Reuters
news, a seeded sample, tokens joined by spaces), written once to OUT/conll2003-sentences.txt. News is
neither SST-2 (the task) nor STS-B: STS-B is where forgetting is measured, so its sentences in the Fisher
or in the replay would tune the mitigation on the test set (and flatter it); CoNLL stands in for the
general text the model knew before.

    python scripts/forgetting_experiment.py --data-dir ../shared/data --out runs/forgetting
    python scripts/forgetting_experiment.py --rows ewc replay --ewc 10 --replay-ratio 1  # some rows only

Writes OUT/forgetting-mitigation.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import tunebench
from tunebench.analysis.drift import forgetting
from tunebench.data import DataConfig
from tunebench.data.conll import read_token_file

ROWS = ("none", "l2sp", "ewc", "replay")


def conll_corpus(data_dir: Path, out: Path, size: int, seed: int = 0) -> Path:
    """A seeded sample of `size` CoNLL-2003 training sentences, one per line (written once)."""
    path = out / "conll2003-sentences.txt"
    if not path.is_file():
        tokens, _ = read_token_file(data_dir / "conll2003" / "train.txt.gz")
        sample = random.Random(seed).sample(tokens, min(size, len(tokens)))
        out.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(" ".join(sentence) for sentence in sample) + "\n")
    return path


def settings(a, corpus: Path) -> list[tuple[str, str, dict]]:
    """(method, its setting, compare's `train` overrides) per row asked for, in the table's order."""
    rows = []
    if "none" in a.rows:
        rows.append(("none", "", {}))
    if "l2sp" in a.rows:
        rows += [("L2-SP", f"λ = {lam:g}", {"l2sp": lam}) for lam in a.l2sp]
    if "ewc" in a.rows:
        rows += [("EWC", f"λ = {lam:g}", {"ewc": lam, "reference": str(corpus)}) for lam in a.ewc]
    if "replay" in a.rows:
        rows += [("replay", f"r = {r:g}", {"replay": str(corpus), "replay_ratio": r}) for r in a.replay_ratio]
    return rows


def cka(values: list | None) -> str:
    """The encoder blocks' CKA (the embeddings layer left out), two decimals."""
    return "–" if not values else " ".join("–" if v is None else f"{v:.2f}" for v in values[1:])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--out", default="runs/forgetting")
    p.add_argument("--train-size", type=int, default=2000)
    p.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS), help="which methods to run")
    p.add_argument("--l2sp", nargs="+", type=float, default=[0.1, 1.0], help="L2-SP strengths")
    p.add_argument("--ewc", nargs="+", type=float, default=[1.0, 10.0, 100.0], help="EWC strengths")
    p.add_argument("--replay-ratio", nargs="+", type=float, default=[0.5, 1.0], help="replay ratios")
    p.add_argument("--corpus-size", type=int, default=5000, help="CoNLL sentences in the corpus")
    p.add_argument("--strategies", nargs="+", default=["full"])
    a = p.parse_args()
    out = Path(a.out)
    corpus = conll_corpus(Path(a.data_dir), out, a.corpus_size)
    data = DataConfig("sst2", data_dir=a.data_dir, train_size=a.train_size)
    sts = DataConfig("stsb", data_dir=a.data_dir)
    results = []
    for method, setting, train in settings(a, corpus):
        rows = tunebench.compare(data, strategies=a.strategies, out=out, train=train, show=False, drift=True)
        for record in rows.records:
            kept = forgetting(out / "runs" / record["key"], sts, show=False)
            results.append(
                {
                    "strategy": record["strategy"],
                    "method": method,
                    "setting": setting,
                    "train": train,
                    "dev_accuracy": record["dev_metrics"]["accuracy"],
                    "test_accuracy": record["test_metrics"]["accuracy"],
                    "stsb_original": kept["original"][kept["split"]],
                    "stsb_fine_tuned": kept["fine_tuned"][kept["split"]],
                    "stsb_points": kept["difference_points"],
                    "train_seconds": record["times"]["training"],
                    # per-layer linear CKA, original vs fine-tuned, on SST-2 dev (1 = unchanged)
                    "cka": record.get("drift", {}).get("cka"),
                }
            )
    (out / "forgetting-mitigation.json").write_text(json.dumps(results, indent=1))
    print(
        "| strategy | against forgetting | setting | SST-2 dev acc | SST-2 test acc "
        "| STS-B Spearman (original → fine-tuned) | change (points) | CKA per layer (1…6) | training s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['strategy']} | {r['method']} | {r['setting']} | {r['dev_accuracy']:.4f} | "
            f"{r['test_accuracy']:.4f} | {r['stsb_original']:.4f} → {r['stsb_fine_tuned']:.4f} | "
            f"{r['stsb_points']:+.1f} | {cka(r['cka'])} | {r['train_seconds']:.0f} |"
        )


if __name__ == "__main__":
    main()
