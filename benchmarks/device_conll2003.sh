#!/usr/bin/env bash
# CoNLL-2003 NER trainings on a lent GPU, several variants at once (one small-batch run leaves the
# GPU mostly idle: nine MPNet runs side by side took 216-269 s on an H200). Run from the repo root
# there with NEWS_EXTRACT_COMMIT set to the commit and $OUT for the results, after the calls that
# carried what benchmarks/device_prepare.py wrote: .whl (wheels the GPU image lacks) and
# .device/p1..pN (corpus files, the encoder's fp16 shards), linked together here.
# Settings (environment): CONFIG (default configs/conll2003.yaml), ENCODER (default .device/encoder),
# DATA_ROOT (default .device/p1/data), EVALUATE_ARGS (extra `evaluate` arguments, e.g. --level sentence).
# Each variant's log and metrics JSON are packed into $OUT/results.tgz every 20 s and at the end,
# since a call brings back at most 8 files and a run cut off at the time limit should still report.
# Usage: benchmarks/device_conll2003.sh NAME:KEY=VALUE,KEY=VALUE ...
set -uo pipefail
# USE_HUB_KERNELS=0: transformers 5.25 otherwise asks for the `kernels` package on a GPU (and the hub is unreachable).
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 USE_HUB_KERNELS=0 TQDM_DISABLE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
CONFIG=${CONFIG:-configs/conll2003.yaml} ENCODER=${ENCODER:-.device/encoder} DATA_ROOT=${DATA_ROOT:-.device/p1/data}
if [ "$ENCODER" = .device/encoder ]; then
  mkdir -p .device/encoder && ln -sf "$PWD"/.device/p*/encoder/* .device/encoder/
  python3 -c "
import json, pathlib, sys
index = pathlib.Path('.device/encoder/model.safetensors.index.json')
missing = sorted({f for f in json.loads(index.read_text())['weight_map'].values()} - {p.name for p in index.parent.iterdir()})
sys.exit(f'encoder shards missing (was the machine given back between calls?): {missing}' if missing else 0)" || exit 1
fi
read -ra evaluate_args <<< "${EVALUATE_ARGS:-}"
work=/tmp/device_results
mkdir -p "$work"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
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
