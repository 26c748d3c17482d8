#!/usr/bin/env bash
# CoNLL-2003 NER trainings on a lent GPU, several variants at once (one small-batch run leaves the
# GPU mostly idle: nine MPNet runs side by side took 216-269 s on an H200). Run from the repo root
# there with NEWS_EXTRACT_COMMIT set to the commit and $OUT for the results; benchmarks/device_env.sh
# says what it needs and which settings it reads. Each variant trains into runs/NAME and is scored
# on its test split; its log and metrics JSON are packed into $OUT/results.tgz every 20 s and at the
# end, so that a run cut off at the time limit still reports.
# Usage: benchmarks/device_conll2003.sh NAME:KEY=VALUE,KEY=VALUE ...
set -uo pipefail
source "$(dirname "$0")/device_env.sh" || exit 1
(while sleep 20; do pack; done) &
packer=$!
for variant in "$@"; do
  name=${variant%%:*}
  sets=()
  IFS=, read -ra kvs <<< "${variant#*:}"
  for kv in "${kvs[@]}"; do sets+=(--set "$kv"); done
  (
    start=$(date +%s)
    python3 -m training train --config "$CONFIG" --data-root "$DATA_ROOT" --output "runs/$name" \
      --set encoder="$ENCODER" --set mixed_precision=bf16 "${sets[@]}" > "$work/$name.log" 2>&1 &&
    python3 -m training evaluate --model "runs/$name" --out "$work/$name.json" "${evaluate_args[@]}" >> "$work/$name.log" 2>&1
    echo "$name: exit $? after $(( $(date +%s) - start )) s" | tee -a "$work/summary.txt"
  ) &
done
wait $(jobs -p | grep -vx "$packer")
kill "$packer"
pack
grep -h "micro\|level\|best_dev" "$work"/*.log | head -40
