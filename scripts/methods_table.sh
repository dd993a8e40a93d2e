#!/usr/bin/env bash
# One-seed HAPT table of every method: pretrain (40 epochs, the defaults), then linear and finetune
# at 1%, 10%, 100% labels on the test subjects; supervised once. Writes runs/methods/<method>{,-eval}
# and prints each evaluation's results table. Usage: scripts/methods_table.sh [METHOD ...]
set -euo pipefail
cd "$(dirname "$0")/.."
CROSSL=.venv/bin/crossl
OUT=runs/methods
methods=("$@")
[ ${#methods[@]} -gt 0 ] || methods=(crossl random-init simclr vicreg-aug cocoa mae)
mkdir -p "$OUT"
for m in "${methods[@]}"; do
    [ -d "$OUT/$m" ] || $CROSSL pretrain --data hapt --method "$m" --seeds 0 --no-progress --out "$OUT/$m"
    [ -d "$OUT/$m-eval" ] || $CROSSL evaluate --data hapt --pretrained "$OUT/$m" --protocols linear,finetune \
        --seeds 0 --no-progress --out "$OUT/$m-eval"
done
[ -d "$OUT/supervised" ] || $CROSSL evaluate --data hapt --protocols supervised --seeds 0 --no-progress \
    --out "$OUT/supervised"
.venv/bin/python scripts/summarize_runs.py "$OUT"/*-eval "$OUT/supervised"
