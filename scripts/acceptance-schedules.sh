#!/usr/bin/env bash
# The NER and QA ladders again with the per-task schedules (10 epochs for the gradient strategies)
# and the task's frozen-feature classifiers (NER: BiLSTM on learned layer weights; QA: the span
# reader), on the 2-core CPU. Same folders as scripts/acceptance-tasks.sh: finished runs with the
# same settings (the Table 7 BiLSTM row, full fine-tuning for 10 epochs) are reused, not retrained.
set -uo pipefail
OUT=${OUT:-runs/acceptance}
DATA=${DATA:-../shared/data}
run() {  # run NAME FOLDER ARGS...: one compare, its wall time in OUT/NAME.time, its table in OUT/NAME.txt
  local name=$1 folder=$2; shift 2
  /usr/bin/time -f "%e s wall" -o "$OUT/$name.time" tunebench compare --data-dir "$DATA" --out "$OUT/$folder" \
    "$@" > "$OUT/$name.txt" 2> "$OUT/$name.log"
}
run xquad-en-features xquad-en --data xquad-en --strategies features
run conll2003-schedule conll2003 --data conll2003 --train-size 2000
run xquad-en-full10 xquad-en --data xquad-en --strategies full
run xquad-en-head20 xquad-en --data xquad-en --strategies head
run xquad-en-lora10 xquad-en --data xquad-en --strategies lora
