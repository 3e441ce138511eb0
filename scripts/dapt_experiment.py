"""The domain-adaptive pre-training experiment of the README: IMDB as the target (500 labelled training
reviews; dev and test 1,000 each), the corpus the rest of IMDB's training split without its labels;
all-MiniLM-L6-v2 adapted by MLM (whole-word masking, a new head) and by TSDAE for the same number of
steps, the ladder on the original and on each adapted backbone (`compare --dapt-corpus`), and
`tunebench gap` (reference SST-2) before and after.

    python scripts/dapt_experiment.py --data-dir ../shared/data --out runs/dapt

Writes OUT/dapt-experiment.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
from pathlib import Path

from tunebench.analysis.gap import domain_gap
from tunebench.api import compare_dapt
from tunebench.data import DataConfig, load_table, load_text_classification


def corpus_file(data_dir: Path, data: DataConfig, dest: Path) -> Path:
    """IMDB's training reviews but the run's labelled training rows, one per line (dev rows are taken
    out by compare --dapt-corpus itself)."""
    used = set(load_text_classification(data).train.texts)
    table = load_table(data_dir / "imdb" / "train.jsonl.gz")
    rest = [t for t in table.columns["text"] if t not in used]
    dest.write_text("\n".join(" ".join(t.split()) for t in rest) + "\n")
    return dest


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default="../shared/data")
    p.add_argument("--out", default="runs/dapt")
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--max-length", type=int, default=128, help="tokens per adaptation sequence")
    p.add_argument("--objectives", nargs="+", default=["mlm", "tsdae"])
    p.add_argument("--strategies", nargs="+", default=["features", "head", "full", "lora"])
    p.add_argument("--no-gap", action="store_true")
    a = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    data = DataConfig("imdb", data_dir=a.data_dir, train_size=500, eval_size=1000)
    corpus = corpus_file(Path(a.data_dir), data, out / "corpus.txt")
    results, first = {}, None
    for objective in a.objectives:
        dest = out / objective
        if first is not None and not (dest / "original").exists():  # the original's runs: reused
            shutil.copytree(first / "original", dest / "original")
        options = {"objective": objective, "steps": a.steps, "max_length": a.max_length}
        results[objective] = compare_dapt(
            data, corpus, out=dest, strategies=a.strategies, adapt_options=options, show=False
        )
        first = first or dest
    gaps = {}
    if not a.no_gap:
        models = {"original": "minilm", **{o: r["adapt"]["adapted"] for o, r in results.items()}}
        for name, model in models.items():
            g = domain_gap(data, "sst2", model, out / f"gap-{name}", data_dir=a.data_dir, show=False)
            gaps[name] = {
                "frozen_probe_dev_accuracy": g["frozen_probe"]["dev_accuracy"],
                "unk_rate": g["tokenizer"]["unk_rate"],
                "mmd2": g["embedding"]["mmd2"],
                "mmd_ratio": g["embedding"]["ratio"],
                "verdict": g["verdict"],
            }
    (out / "dapt-experiment.json").write_text(
        json.dumps({"runs": results, "gap": gaps}, indent=1, default=str)
    )

    objectives = list(results)
    print(
        "| strategy | original test acc | "
        + " | ".join(f"+{o.upper()} test acc (gain)" for o in objectives)
        + " |"
    )
    print("|---|---|" + "---|" * len(objectives))
    for i, row in enumerate(results[objectives[0]]["rows"]):
        cells = []
        for o in objectives:
            r = results[o]["rows"][i]
            test = (r["adapted"] or {}).get("test")
            cells.append("–" if test is None else f"{test:.4f} ({r['gain'] * 100:+.1f})")
        print(f"| {row['strategy']} | {row['original']['test']:.4f} | " + " | ".join(cells) + " |")
    for o in objectives:
        r = results[o]["adapt"]
        print(
            f"\n{o}: {r['steps']} steps, {r['seconds']:.0f} s ({r['tokens_per_second']:.0f} tokens/s), "
            f"held-out loss {r['held_out_before']['loss']:.3f} -> {r['held_out_after']['loss']:.3f}, "
            f"peak {r['peak_mb']:.0f} MB"
        )
    if gaps:
        print(
            "\n| backbone | frozen probe dev acc | unknown-token rate | MMD² vs SST-2 (ratio to baseline) | verdict |"
        )
        print("|---|---|---|---|---|")
        for name, g in gaps.items():
            print(
                f"| {name} | {g['frozen_probe_dev_accuracy']:.4f} | {g['unk_rate']:.4f} | "
                f"{g['mmd2']:.4f} ({g['mmd_ratio']:.1f}×) | {g['verdict']} |"
            )


if __name__ == "__main__":
    main()
