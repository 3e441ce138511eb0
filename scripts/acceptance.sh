#!/usr/bin/env bash
# The measurements quoted in the README (2-core CPU, default backbone all-MiniLM-L6-v2).
# Each step reuses finished runs in its output folder, so the script can be stopped and rerun.
set -euo pipefail
OUT=${OUT:-runs/acceptance}
DATA=${DATA:-../shared/data}
mkdir -p "$OUT"

# 1. The main job exactly as a user types it: default ladder, seed 0.
/usr/bin/time -f "%e s wall" -o "$OUT/sst2-default.time" \
  tunebench -q compare --data sst2 --data-dir "$DATA" --train-size 2000 --out "$OUT/sst2"

# 2. IMDB: reviews truncated at the model's maximum length (256 for all-MiniLM-L6-v2);
#    dev is split off train, dev and test capped at 1,000 reviews each.
/usr/bin/time -f "%e s wall" -o "$OUT/imdb-default.time" \
  tunebench -q compare --data imdb --data-dir "$DATA" --train-size 2000 --eval-size 1000 --out "$OUT/imdb"

# 3. Every strategy (the default-ladder runs of step 1 are reused), export the best; add --seeds 0 1 2
#    for mean ± std.
tunebench -q compare --data sst2 --data-dir "$DATA" --train-size 2000 --out "$OUT/sst2" \
  --strategies all --export "$OUT/sst2-best"

# 4. Layer probe (reuses the feature cache), drift from the saved artifacts, domain gap against IMDB,
#    and the HTML report of the SST-2 folder.
tunebench -q probe --data sst2 --data-dir "$DATA" --train-size 2000 --out "$OUT/sst2"
tunebench -q compare --data sst2 --data-dir "$DATA" --train-size 2000 --out "$OUT/sst2" --strategies all --drift
tunebench -q gap --data sst2 --data-dir "$DATA" --train-size 2000 --reference imdb --out "$OUT/sst2"
tunebench report "$OUT/sst2"
