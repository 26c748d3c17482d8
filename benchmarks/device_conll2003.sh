#!/usr/bin/env bash
# CoNLL-2003 NER trainings on a lent GPU, several variants at once (one small-batch run leaves the
# GPU mostly idle, so parallel runs cost little wall time). Run from the repo root there with
# NEWS_EXTRACT_COMMIT set to the commit and $OUT for the results; the git-ignored folders it reads
# travel in `carry`: .whl (wheels the GPU image lacks), the encoder (an fp16 safetensors copy; a
# larger one can travel in shards over several calls, see BENCHMARKS.md) and the corpus files.
# Settings (environment): CONFIG (default configs/conll2003.yaml), ENCODER (default .device/minilm),
# DATA_ROOT (default .device/data), EVALUATE_ARGS (extra `evaluate` arguments, e.g. --level sentence).
# Each variant's log and metrics JSON are packed into $OUT/results.tgz every 20 s and at the end,
# since a call brings back at most 8 files and a run cut off at the time limit should still report.
# Usage: benchmarks/device_conll2003.sh NAME:KEY=VALUE,KEY=VALUE ...
set -uo pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TQDM_DISABLE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
CONFIG=${CONFIG:-configs/conll2003.yaml} ENCODER=${ENCODER:-.device/minilm} DATA_ROOT=${DATA_ROOT:-.device/data}
read -ra evaluate_args <<< "${EVALUATE_ARGS:-}"
work=/tmp/device_results
mkdir -p "$work"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
python3 -c "import torch, transformers, datasets, accelerate, seqeval, pyarrow; print('torch', torch.__version__, 'transformers', transformers.__version__, 'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__, torch.cuda.get_device_name(0))" || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
pack() { tar -czf "$OUT/results.tgz.part" -C "$work" . && mv "$OUT/results.tgz.part" "$OUT/results.tgz"; }
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
