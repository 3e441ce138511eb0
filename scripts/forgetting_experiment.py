"""The forgetting experiment of the README: SST-2 full fine-tuning with and without L2-SP (a penalty toward
the pre-trained weights, `--l2sp`), the target accuracy beside what the backbone keeps elsewhere: STS-B
Spearman of cosine similarities of its mean-pooled embeddings (`tunebench forgetting --data stsb`), the
original model's score vs the fine-tuned one's.

    python scripts/forgetting_experiment.py --data-dir ../shared/data --out runs/forgetting

Writes OUT/forgetting-l2sp.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import tunebench
from tunebench.analysis.drift import forgetting
from tunebench.data import DataConfig


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--out", default="runs/forgetting")
    p.add_argument("--train-size", type=int, default=2000)
    p.add_argument("--l2sp", nargs="+", type=float, default=[0.0, 0.01, 0.1, 1.0])
    p.add_argument("--strategies", nargs="+", default=["full"])
    a = p.parse_args()
    out = Path(a.out)
    data = DataConfig("sst2", data_dir=a.data_dir, train_size=a.train_size)
    sts = DataConfig("stsb", data_dir=a.data_dir)
    results = []
    for lam in a.l2sp:
        rows = tunebench.compare(data, strategies=a.strategies, out=out, train={"l2sp": lam}, show=False)
        for record in rows.records:
            kept = forgetting(out / "runs" / record["key"], sts, show=False)
            results.append(
                {
                    "strategy": record["strategy"],
                    "l2sp": lam,
                    "dev_accuracy": record["dev_metrics"]["accuracy"],
                    "test_accuracy": record["test_metrics"]["accuracy"],
                    "stsb_original": kept["original"][kept["split"]],
                    "stsb_fine_tuned": kept["fine_tuned"][kept["split"]],
                    "stsb_points": kept["difference_points"],
                    "train_seconds": record["times"]["training"],
                }
            )
    (out / "forgetting-l2sp.json").write_text(json.dumps(results, indent=1))
    print(
        "| strategy | --l2sp | SST-2 dev acc | SST-2 test acc | STS-B Spearman (original → fine-tuned) | change (points) |"
    )
    print("|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['strategy']} | {r['l2sp']:g} | {r['dev_accuracy']:.4f} | {r['test_accuracy']:.4f} | "
            f"{r['stsb_original']:.4f} → {r['stsb_fine_tuned']:.4f} | {r['stsb_points']:+.1f} |"
        )


if __name__ == "__main__":
    main()
