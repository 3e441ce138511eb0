"""Print the CoNLL-2003 frozen-feature runs next to the BERT paper's Table 7 (dev F1, BERT-base).

Usage: python scripts/table7.py runs/acceptance/conll2003
"""

import sys

from tunebench.store import RunStore

PAPER = {  # Devlin et al. 2019, Table 7 (feature-based: frozen activations -> 2-layer BiLSTM)
    "embeddings": 91.0,
    "second-last": 95.6,
    "last": 94.9,
    "weighted-last-4": 95.9,
    "concat-last-4": 96.1,
    "weighted-all": 95.5,
}
NAMES = {
    "embeddings": "embeddings only",
    "second-last": "second-to-last hidden",
    "last": "last hidden",
    "mean-of-last-4": "sum of last four (fixed)",
    "weighted-last-4": "weighted sum of last four",
    "concat-last-4": "concat of last four",
    "mean-of-all": "sum of all layers (fixed)",
    "weighted-all": "weighted sum of all layers",
}

runs = [r for r in RunStore(sys.argv[1]).all() if r["status"] == "ok"]
feats = {}
for r in runs:
    if r["strategy"] == "features":
        s = r["settings"]
        feats[(s["layers"], s["classifier"])] = r
print(
    "| features (frozen) | BERT-base + BiLSTM (paper) | MiniLM + BiLSTM dev F1 | test F1 | MiniLM + linear dev F1 | test F1 |"
)
print("|---|---|---|---|---|---|")
for layers, name in NAMES.items():
    b, lin = feats.get((layers, "bilstm")), feats.get((layers, "logreg"))

    def cell(r, split):
        return f"{100 * r[f'{split}_metrics']['f1']:.1f}" if r else "–"

    paper = f"{PAPER[layers]:.1f}" if layers in PAPER else "–"
    print(
        f"| {name} | {paper} | {cell(b, 'dev')} | {cell(b, 'test')} | {cell(lin, 'dev')} | {cell(lin, 'test')} |"
    )
for r in runs:
    if r["strategy"] != "features":
        print(
            f"| trained: {r['strategy']}, {r['train_config']['epochs']} epochs | "
            f"{'96.4' if r['strategy'] == 'full' else '–'} | "
            f"{100 * r['dev_metrics']['f1']:.1f} | {100 * r['test_metrics']['f1']:.1f} | | |"
        )
