"""The distillation experiment of the README: SST-2, 2,000 training sentences; the teacher is the best run
of the default ladder (by dev accuracy); students minilm:L3 and minilm:L2 (the bottom 3 / 2 of MiniLM's 6
blocks), each without and with 20,000 unlabelled SST-2 training sentences (none of the 2,000).

    python scripts/distill_experiment.py --data-dir ../shared/data --out runs/distill

Writes OUT/distill-experiment.json and prints a Markdown table: test accuracy, predict latency (batch 1)
and throughput (batch 32) on this machine, parameters, and speed-up over the teacher.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import random
from pathlib import Path

import tunebench
from tunebench.data import DataConfig, load_table, load_text_classification
from tunebench.distill import distill


def unlabeled_file(data_dir: Path, data: DataConfig, n: int, dest: Path) -> Path:
    """`n` SST-2 training sentences that are not among the run's training rows (seeded)."""
    used = set(load_text_classification(data).train.texts)
    table = load_table(data_dir / "sst2" / "train.tsv.gz")
    rest = sorted({t for t in table.columns["sentence"] if t not in used})
    chosen = random.Random(0).sample(rest, n)
    with open(dest, "w", newline="") as f:
        w = csv.writer(f, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\")
        w.writerow(["sentence"])
        w.writerows([t.replace("\t", " ")] for t in chosen)
    return dest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--out", default="runs/distill")
    p.add_argument("--students", nargs="+", default=["minilm:L3", "minilm:L2"])
    p.add_argument("--unlabeled", type=int, default=20_000)
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    data = DataConfig("sst2", data_dir=a.data_dir, train_size=2000)
    ladder = tunebench.compare(data, out=out / "ladder", show=False)
    teacher = out / "ladder" / "runs" / ladder.best["best_key"]
    extra = unlabeled_file(Path(a.data_dir), data, a.unlabeled, out / "unlabeled.tsv")
    results = []
    for student in a.students:
        for unlabeled in (None, str(extra)):
            r = distill(teacher, student, data, unlabeled=unlabeled, out=out / "students", show=False)
            results.append({"unlabeled": 0 if unlabeled is None else a.unlabeled, **r})
    (out / "distill-experiment.json").write_text(json.dumps(results, indent=1, default=str))
    t = results[0]["teacher"]
    print(
        "| model | unlabelled sentences | test accuracy | predict ms/ex (b1) | predict ex/s (b32) | parameters | speed-up (b32) |"
    )
    print("|---|---|---|---|---|---|---|")
    print(
        f"| teacher: {results[0]['teacher']['model']} | – | {t['test']:.4f} | {t['latency_ms']:.2f} | {t['examples_per_second']:.0f} | {t['params']:,} | 1.00× |"
    )
    for r in results:
        s = r["student"]
        speed = s["examples_per_second"] / r["teacher"]["examples_per_second"]
        print(
            f"| student: {s['model']} | {r['unlabeled']:,} | {s['test']:.4f} | {s['latency_ms']:.2f} | "
            f"{s['examples_per_second']:.0f} | {s['params']:,} | {speed:.2f}× |"
        )


if __name__ == "__main__":
    main()
