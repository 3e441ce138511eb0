#!/usr/bin/env bash
# BERT paper Table 7 with its classifier: frozen word vectors -> BiLSTM (one layer, 128 per direction)
# -> linear, for each layer combination; same folder and word-vector cache as the CoNLL-2003 ladder.
set -uo pipefail
OUT=${OUT:-runs/acceptance}
DATA=${DATA:-../shared/data}
for layers in embeddings second-last last weighted-last-4 concat-last-4 weighted-all; do
  /usr/bin/time -f "%e s wall" -o "$OUT/conll2003-bilstm-$layers.time" tunebench compare --data-dir "$DATA" \
    --out "$OUT/conll2003" --data conll2003 --train-size 2000 --strategies features \
    --opt features.classifier=bilstm --opt features.layers=$layers > "$OUT/conll2003-bilstm-$layers.txt" 2>&1
done
python scripts/table7.py "$OUT/conll2003"
# Full fine-tuning run to convergence (the ladder's 3 epochs stop while NER dev F1 still rises).
/usr/bin/time -f "%e s wall" -o "$OUT/conll2003-full10.time" tunebench compare --data-dir "$DATA" \
  --out "$OUT/conll2003" --data conll2003 --train-size 2000 --strategies full --opt full.epochs=10 \
  --patience 3 > "$OUT/conll2003-full10.txt" 2>&1
python scripts/table7.py "$OUT/conll2003"
