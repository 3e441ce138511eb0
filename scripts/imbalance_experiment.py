"""The imbalance experiment of the README: Banking77 (77 intents) as it is and long-tailed, each strategy
with and without each imbalance option, scored on the balanced test set (40 per class).

    python scripts/imbalance_experiment.py --data-dir ../shared/data --out runs/imbalance
    python scripts/imbalance_experiment.py --data cifar10-subset --eval-size 1000 --ratios 1 10 100 \
        --strategies features head --data-dir ../shared/data --out runs/imbalance-cifar

Long-tailed versions: `--long-tail RHO` (data/splits.long_tail_indices): after dev is split off train,
class i of 77 (label order) keeps n_max * RHO^(-i/76) of its training rows, seeded (Cao et al. 2019).
Selection is compare's default: macro-F1, since even the original training classes are 5:1 apart.
Options that do not touch a strategy are not run for it (the sampler and label smoothing do not reach
the frozen-feature classifier). Writes OUT/imbalance.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import tunebench
from tunebench.data import DataConfig

VARIANTS = {
    "none": {},
    "class weights": {"class_weights": "balanced"},
    "balanced sampler": {"sampler": "balanced"},
    "label smoothing 0.1": {"label_smoothing": 0.1},
}
GRADIENT_ONLY = {"balanced sampler", "label smoothing 0.1"}


def run(
    data_dir: str,
    out: Path,
    ratios: list[float],
    strategies: list[str],
    seeds: list[int],
    variants: list[str],
    dataset: str = "banking77",
    eval_size: int | None = None,
) -> list[dict]:
    results = []
    for rho in ratios:
        long_tail = None if rho == 1 else rho
        data = DataConfig(dataset, data_dir=data_dir, long_tail=long_tail, eval_size=eval_size)
        for variant in variants:
            train = VARIANTS[variant]
            names = [s for s in strategies if not (variant in GRADIENT_ONLY and s == "features")]
            t0 = time.perf_counter()
            folder = out / f"rho{rho:g}"  # one store per dataset: the variants share its feature cache
            rows = tunebench.compare(data, strategies=names, seeds=seeds, out=folder, train=train, show=False)
            for row in rows:
                runs = [r for r in rows.records if r["strategy"] == row["strategy"] and r["status"] == "ok"]
                test = [r["test_metrics"] for r in runs]
                results.append(
                    {
                        "rho": rho,
                        "train_rows": runs[0]["sizes"]["train"] if runs else None,
                        "variant": variant,
                        "strategy": row["strategy"],
                        "selected_by": runs[0]["selection"]["metric"] if runs else None,
                        "test_macro_f1": sum(t["macro_f1"] for t in test) / len(test) if test else None,
                        "test_accuracy": sum(t["accuracy"] for t in test) / len(test) if test else None,
                        "rare_class_f1": row["rare_f1"],
                        "never_predicted": max(
                            (len(t.get("never_predicted", [])) for t in test), default=None
                        ),
                        "seconds": row["time_s"],
                    }
                )
            logging.getLogger("tunebench").info("rho %g, %s: %.0f s", rho, variant, time.perf_counter() - t0)
    return results


def table(results: list[dict]) -> str:
    lines = [
        "| ρ | train rows | strategy | option | test macro-F1 | rare-class F1 | accuracy | classes never predicted |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(results, key=lambda r: (r["rho"], r["strategy"], list(VARIANTS).index(r["variant"]))):
        rare = "–" if r["rare_class_f1"] is None else f"{r['rare_class_f1']:.3f}"
        lines.append(
            f"| {r['rho']:g} | {r['train_rows']} | {r['strategy']} | {r['variant']} | {r['test_macro_f1']:.3f} | "
            f"{rare} | {r['test_accuracy']:.3f} | {r['never_predicted']} |"
        )
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--out", default="runs/imbalance")
    p.add_argument("--ratios", nargs="+", type=float, default=[1, 10, 100], help="1: Banking77 as it is")
    p.add_argument("--strategies", nargs="+", default=["features", "head", "lora"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--data", default="banking77", help="a named classification dataset (cifar10-subset ...)")
    p.add_argument("--eval-size", type=int, help="cap dev and test (stratified), as compare's --eval-size")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(a.out)
    results = run(a.data_dir, out, a.ratios, a.strategies, a.seeds, a.variants, a.data, a.eval_size)
    (out / "imbalance.json").write_text(json.dumps(results, indent=1))
    print(table(results))


if __name__ == "__main__":
    main()
