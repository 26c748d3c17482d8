#!/usr/bin/env bash
# CoNLL-2003 NER trainings on a lent GPU, several variants at once (the small encoder leaves the
# GPU mostly idle, so parallel runs cost little wall time). Run from the repo root there with the
# git-ignored folders .device (fp16 MiniLM copy, corpus files) and .whl (wheels the GPU image
# lacks) carried, NEWS_EXTRACT_COMMIT set to the commit, and $OUT for the results.
# Usage: benchmarks/device_conll2003.sh NAME:KEY=VALUE,KEY=VALUE ...
set -uo pipefail
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TQDM_DISABLE=1 OMP_NUM_THREADS=3
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD
python3 -c "import torch, transformers, datasets, accelerate, seqeval, pyarrow; print('torch', torch.__version__, 'transformers', transformers.__version__, 'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__, torch.cuda.get_device_name(0))" || exit 1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
for variant in "$@"; do
  name=${variant%%:*}
  sets=()
  IFS=, read -ra kvs <<< "${variant#*:}"
  for kv in "${kvs[@]}"; do sets+=(--set "$kv"); done
  (
    start=$(date +%s)
    python3 -m training train --config configs/conll2003.yaml --data-root .device/data --output "runs/$name" \
      --set encoder=.device/minilm --set mixed_precision=bf16 "${sets[@]}" > "$OUT/$name.log" 2>&1 &&
    python3 -m training evaluate --model "runs/$name" --out "$OUT/$name.json" >> "$OUT/$name.log" 2>&1
    echo "$name: exit $? after $(( $(date +%s) - start )) s"
  ) &
done
wait
grep -h "micro\|level\|best_dev" "$OUT"/*.log | head -40
