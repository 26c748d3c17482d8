#!/usr/bin/env bash
# The resume check on CoNLL04 (BENCHMARKS.md, "Durable training"): an uninterrupted run, then the
# same run killed twice (the test hook mid-way through NER epoch 2, a real SIGKILL during
# relation training) and continued with --resume; both evaluated on the test split.
# Shortened to 2 + 2 epochs to spare the shared CPU. Usage: bash benchmarks/resume_check.sh [DATA_ROOT]
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
DATA=${1:-../shared/data}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
ARGS=(--config configs/conll04.yaml --data-root "$DATA" --set ner.epochs=2 --set relations.epochs=2 --set checkpoint_steps=25)
OUT=runs/resume-check
rm -rf "$OUT" && mkdir -p "$OUT"
echo "commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD || echo +dirty), $(date -u +%FT%TZ), $(nproc --all) CPUs"

start=$(date +%s)
$PY -m training train "${ARGS[@]}" --output "$OUT/uninterrupted" || exit 1
echo "uninterrupted: $(( $(date +%s) - start )) s"

start=$(date +%s)
NEWS_EXTRACT_STOP_AFTER_STEPS=90 $PY -m training train "${ARGS[@]}" --output "$OUT/resumed"
echo "first interruption (hook, NER step 90): exit $?"
$PY -m training train "${ARGS[@]}" --output "$OUT/resumed" --resume &
pid=$!
# Kill it for real once relation training has written a checkpoint and moved on a little.
until [ -f "$OUT/resumed.checkpoints/relations/latest.json" ] || ! kill -0 $pid 2>/dev/null; do sleep 2; done
sleep 20
kill -9 $pid 2>/dev/null && echo "second interruption: SIGKILL during relation training, at $(cat $OUT/resumed.checkpoints/relations/latest.json)"
wait $pid
$PY -m training train "${ARGS[@]}" --output "$OUT/resumed" --resume || exit 1
echo "interrupted twice and resumed: $(( $(date +%s) - start )) s"

for run in uninterrupted resumed; do
  $PY -m training evaluate --model "$OUT/$run" --level sentence --out "$OUT/$run.metrics.json" > "$OUT/$run.evaluate.txt" || exit 1
done
for f in ner/model.safetensors relations/model.safetensors relations/head.safetensors; do
  cmp -s "$OUT/uninterrupted/$f" "$OUT/resumed/$f" && echo "$f: identical" || echo "$f: DIFFERS"
done
$PY - "$OUT" <<'PYEOF'
import json, sys
out = sys.argv[1]
for run in ("uninterrupted", "resumed"):
    m = json.load(open(f"{out}/{run}.metrics.json"))
    print(run, "entity F1 %.4f" % m["ner"]["micro"]["f1"], "Rel+ %.4f" % m["relations"]["strict"]["micro"]["f1"],
          "Rel+ gold entities %.4f" % m["relations"]["gold_entities"]["strict"]["micro"]["f1"], m["commit"], m["machine"], m["date"])
PYEOF
