# Sourced by the benchmarks/device_*.sh scripts on a lent GPU, from the repo root, after the calls
# that carried what benchmarks/device_prepare.py wrote: .whl (wheels the GPU image lacks) and
# .device/p1..pN (corpus files, the encoder's fp16 shards). Links the shards into .device/encoder,
# installs the wheels (once per machine), and defines `pack`, which puts everything under $work
# into $OUT/results.tgz (a call brings back at most 8 files, so logs and JSONs travel as one).
# Settings (environment): CONFIG (default configs/conll2003.yaml), ENCODER (default .device/encoder),
# DATA_ROOT (default .device/p1/data), EVALUATE_ARGS (extra `evaluate` arguments, e.g. --level sentence).
# USE_HUB_KERNELS=0: transformers 5.25 otherwise asks for the `kernels` package on a GPU (and the hub is unreachable).
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 USE_HUB_KERNELS=0 TQDM_DISABLE=1 OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}
export CONFIG=${CONFIG:-configs/conll2003.yaml} ENCODER=${ENCODER:-.device/encoder} DATA_ROOT=${DATA_ROOT:-.device/p1/data}
read -ra evaluate_args <<< "${EVALUATE_ARGS:-}"
work=/tmp/device_results
mkdir -p "$work"
if [ "$ENCODER" = .device/encoder ]; then
  mkdir -p .device/encoder && ln -sf "$PWD"/.device/p*/encoder/* .device/encoder/
  python3 -c "
import json, pathlib, sys
index = pathlib.Path('.device/encoder/model.safetensors.index.json')
missing = sorted({f for f in json.loads(index.read_text())['weight_map'].values()} - {p.name for p in index.parent.iterdir()})
sys.exit(f'encoder shards missing (was the machine given back between calls?): {missing}' if missing else 0)" || return 1
fi
export PYTHONPATH=/tmp/site:$PWD
if [ ! -e /tmp/site/.installed ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || return 1
  python3 -c "import torch, transformers, datasets, accelerate, seqeval, pyarrow; print('torch', torch.__version__, 'transformers', transformers.__version__, 'datasets', datasets.__version__, 'pyarrow', pyarrow.__version__, torch.cuda.get_device_name(0))" || return 1
  touch /tmp/site/.installed
  nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
fi
# A temporary name of this process's own, then a rename: packers of nested scripts never mix their writes.
pack() { tar -czf "$OUT/.results.$BASHPID.tgz" -C "$work" . && mv -f "$OUT/.results.$BASHPID.tgz" "$OUT/results.tgz"; }
