#!/usr/bin/env bash
# The main job on the default: train MiniLM on CoNLL04, evaluate it on the test split, print what
# it finds in the sample article (read in place from $NEWS_DATA_DIR or ../shared/data). Extra arguments go to `training train`
# (e.g. --data-root DIR where the corpora are not at ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
start=$(date +%s)
.venv/bin/python -m training train --config configs/conll04.yaml --output runs/conll04 "$@"
.venv/bin/python -m training evaluate --model runs/conll04
.venv/bin/python -m inference predict --model runs/conll04 "${NEWS_DATA_DIR:-../shared/data}/sample/mehr_qatar_iran.txt"
echo "main job: training, evaluation and prediction took $(( $(date +%s) - start )) s"
