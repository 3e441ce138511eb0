#!/usr/bin/env bash
# Per-task training schedules, measured on a GPU (each run is seconds there, an hour on 2 CPU cores):
# the NER and XQuAD-en ladders with 10 epochs, learning-rate sweeps for full fine-tuning, frozen
# readers for QA, and bf16 vs fp32 throughput of full fine-tuning on SST-2.
# MODEL: the MiniLM directory (default: the packaged one); DATA: the shared data folder; W: output.
set -uo pipefail
MODEL=${MODEL:-minilm}
export TUNEBENCH_DATA_DIR=${DATA:-../shared/data}
W=${W:-runs/gpu}
mkdir -p "$W"
tb() { python3 -m tunebench.cli "$@"; }
run() {  # run NAME ARGS...: one compare, its wall time and table in W/NAME.txt
  local name=$1; shift
  local t0=$SECONDS
  tb compare --model "$MODEL" --out "$W/$name" "$@" > "$W/$name.txt" 2> "$W/$name.log"
  echo "$((SECONDS - t0)) s wall" >> "$W/$name.txt"
  tail -n 30 "$W/$name.txt"
}
# bf16 autocast vs fp32 (full fine-tuning, SST-2, 5,000 sentences, 2 epochs)
run sst2-bf16 --data sst2 --train-size 5000 --strategies full --epochs 2 --precision bf16
run sst2-fp32 --data sst2 --train-size 5000 --strategies full --epochs 2 --precision fp32
# NER: the ladder at 10 epochs (patience 3); full at 1e-4 beside its 5e-5 default
run ner10 --data conll2003 --train-size 2000 --epochs 10 --patience 3 \
  --strategies features head last-k full lora bitfit llrd gradual --opt features.grid=0.01,0.1,1
run ner10-full-1e-4 --data conll2003 --train-size 2000 --epochs 10 --patience 3 --strategies full --opt full.lr=1e-4
# XQuAD-en: the ladder at 10 epochs; full fine-tuning at three rates
run qa10 --data xquad-en --epochs 10 --patience 3 --strategies head last-k full lora bitfit llrd gradual
for lr in 1e-4 2e-4; do
  run qa10-full-$lr --data xquad-en --epochs 10 --patience 3 --strategies full --opt full.lr=$lr
done
run qa10-lora-3e-3 --data xquad-en --epochs 10 --patience 3 --strategies lora --opt lora.lr=3e-3
# Images (EfficientNet-Lite0; a separate call where model and data do not fit one transfer):
# CIFAR-10 subset, 1,000 training images, 10 epochs; full fine-tuning at 5e-5 (above) and 1e-4, 3e-4
if [ "${IMAGES:-0}" = 1 ]; then
  run c10 --data cifar10-subset --train-size 1000 --eval-size 1000 --epochs 10 --patience 3 \
    --strategies full head last-k
  for lr in 1e-4 3e-4; do
    run c10-full-$lr --data cifar10-subset --train-size 1000 --eval-size 1000 --epochs 10 --patience 3 \
      --strategies full --opt full.lr=$lr
  done
fi
