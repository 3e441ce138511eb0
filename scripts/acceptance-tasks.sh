#!/usr/bin/env bash
# Leaderboards for the other tasks (2-core CPU, default backbones: all-MiniLM-L6-v2 for text,
# EfficientNet-Lite0 for images). Each step reuses finished runs in its folder: stop and rerun freely.
set -uo pipefail
OUT=${OUT:-runs/acceptance}
DATA=${DATA:-../shared/data}
mkdir -p "$OUT"
run() {  # run NAME ARGS...: one compare, its wall time in OUT/NAME.time, its table in OUT/NAME.txt
  local name=$1; shift
  /usr/bin/time -f "%e s wall" -o "$OUT/$name.time" tunebench compare --data-dir "$DATA" --out "$OUT/$name" "$@" \
    > "$OUT/$name.txt" 2> "$OUT/$name.log"
}

# Images: hymenoptera as in the PyTorch tutorial (train 245 / val 153); CIFAR-10 subset, 1,000 train
# images (dev split off the 5,000), test capped at 1,000.
run hymenoptera --data hymenoptera --strategies features head last-k full llrd gradual bitfit lora
run stsb --data stsb --train-size 2000
# BERT paper Table 7: the frozen-feature ladder over layer combinations, in the same folder as the
# main ladder so the word-feature cache is computed once; the main ladder runs last, so the folder's
# leaderboard is the ladder (the store keeps every run: scripts/table7.py prints the Table 7 rows).
for layers in embeddings second-last last mean-of-last-4 concat-last-4 mean-of-all; do
  /usr/bin/time -f "%e s wall" -o "$OUT/conll2003-$layers.time" tunebench compare --data-dir "$DATA" \
    --out "$OUT/conll2003" --data conll2003 --train-size 2000 --strategies features \
    --opt features.layers=$layers --opt features.grid=0.01,0.1,1 > "$OUT/conll2003-$layers.txt" 2>&1
done
run conll2003 --data conll2003 --train-size 2000
run cifar10-subset --data cifar10-subset --train-size 1000 --eval-size 1000 --strategies features head last-k full
# XQuAD-en: train articles 1-32, dev 33-36, test 37-48. full + head only here (each gradient epoch is
# ~1,000 windows of 256 tokens: several minutes on 2 cores); head runs the frozen model every epoch.
run xquad-en --data xquad-en --strategies full head --opt head.epochs=3
# XQuAD-en: full fine-tuning with a higher rate and more epochs than the ladder's default
/usr/bin/time -f "%e s wall" -o "$OUT/xquad-en-full-longer.time" tunebench compare --data-dir "$DATA" \
  --out "$OUT/xquad-en" --data xquad-en --strategies full --opt full.lr=1e-4 --opt full.epochs=6 --patience 3 \
  > "$OUT/xquad-en-full-longer.txt" 2>&1
