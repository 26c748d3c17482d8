#!/usr/bin/env bash
# Final figures of one recipe on a lent GPU, which cannot bring its MPNet models back (a call
# returns at most 64 MiB): seeds trained on train alone (runs/ref_sN), the ensemble of those
# (runs/ens_ref, calibrated on dev), their refits on train + dev (runs/refit_sN) and the ensemble of
# the refits (runs/ens_refit, with the calibration of ens_ref), each scored on the test split.
# With STUDENT set, one more run trains on train alone beside the refits (runs/student, the first
# seed), taught by ens_ref. A seed whose best dev F1 is 0, or more than DEV_MARGIN below the best
# seed's (a run that collapsed), is left out of the ensembles and refits; so is a seed whose refit
# collapsed (no run written), with its reference ensembled again (runs/ens_ref_refitted). Environment as
# benchmarks/device_env.sh says, plus
#   SEEDS    seeds, space-separated (default "13 14 15")
#   STUDENT  KEY=VALUE,... added to the recipe for the student, e.g.
#            ner.distill.unlabeled=raw_news/bbc,ner.distill.unlabeled_format=text
#   DEV_MARGIN  dev F1 below the best seed's that leaves a seed out (default 0.02)
#   STAGE    all (default), references (seeds and their ensemble) or refits (the rest, from the
#            runs/ref_sN and runs/ens_ref a references call left on the same warm machine): five
#            or more MPNet seeds need two calls, as one call may run 600 s at most
# Usage: benchmarks/device_seed_ensemble.sh [KEY=VALUE,...]   (--set values added to CONFIG for every run;
#        none where CONFIG is the whole recipe, e.g. configs/conll2003_mpnet.yaml)
set -uo pipefail
part=${STAGE:-all}
case $part in all|references|refits) ;; *) echo "STAGE must be all, references or refits, not '$part'" >&2; exit 2 ;; esac
here=$(dirname "$0")
source "$here/device_env.sh" || exit 1
recipe=${1:+$1,}  # with its trailing comma, so that it joins the per-run values
read -ra seeds <<< "${SEEDS:-13 14 15}"
(while sleep 20; do pack; done) &
packer=$!
stage() { echo "$(date -u +%T) $*" | tee -a "$work/summary.txt"; }

ensemble() {  # NAME [--refit-of RUN] MEMBER...: build, calibrate and score an ensemble run
  local name=$1; shift
  local refit_of=(); [ "$1" = --refit-of ] && { refit_of=(--refit-of "$2"); shift 2; }
  python3 -m training ensemble --members "$@" --output "runs/$name" "${refit_of[@]}" > "$work/$name.log" 2>&1 &&
  python3 -m training evaluate --model "runs/$name" --out "$work/$name.json" "${evaluate_args[@]}" >> "$work/$name.log" 2>&1
  stage "$name: exit $?"
}

if [ "$part" != refits ]; then
  stage "references: seeds ${seeds[*]}"
  bash "$here/device_conll2003.sh" $(for s in "${seeds[@]}"; do echo "ref_s$s:${recipe}seed=$s"; done)
fi
# Seeds kept for the ensembles and refits, chosen on dev alone: a run that collapsed (dev F1 0) or
# collapsed after a good first epoch (the best dev F1 more than DEV_MARGIN below the best seed's)
# would drag an ensemble down.
read -ra kept < <(python3 - "${DEV_MARGIN:-0.02}" "${seeds[@]}" 2> >(tee -a "$work/summary.txt" >&2) <<'PY'
import json, sys
margin, seeds = float(sys.argv[1]), sys.argv[2:]
dev = {}
for s in seeds:
    try:
        dev[s] = json.load(open(f"runs/ref_s{s}/extractor.json"))["training"]["ner"]["best_dev"]
    except (OSError, KeyError, ValueError):
        print(f"ref_s{s} left out: no finished run", file=sys.stderr)
best = max(dev.values(), default=0.0)
for s, f1 in dev.items():
    if f1 <= 0 or f1 < best - margin:
        print(f"ref_s{s} left out: best dev F1 {f1:.4f}, the best seed's {best:.4f} (DEV_MARGIN {margin})", file=sys.stderr)
print(" ".join(s for s, f1 in dev.items() if f1 > 0 and f1 >= best - margin))
PY
)
[ ${#kept[@]} -ge 2 ] || { stage "fewer than two usable seeds"; kill "$packer"; pack; exit 1; }
if [ "$part" != refits ]; then
  ensemble ens_ref $(for s in "${kept[@]}"; do echo "runs/ref_s$s"; done)
fi
[ -e runs/ens_ref/extractor.json ] || { stage "no runs/ens_ref: run STAGE=references first"; kill "$packer"; pack; exit 1; }
if [ "$part" = references ]; then kill "$packer"; pack; exit 0; fi

stage "refits of seeds ${kept[*]}${STUDENT:+, and the student}"
variants=($(for s in "${kept[@]}"; do echo "refit_s$s:${recipe}seed=$s,refit=runs/ref_s$s"; done))
[ -n "${STUDENT:-}" ] && variants+=("student:${recipe}seed=${seeds[0]},ner.distill.teacher=runs/ens_ref,$STUDENT")
bash "$here/device_conll2003.sh" "${variants[@]}"
# A refit that collapsed is not written (training/refit.py): its seed leaves the ensemble, and the
# refits then take the calibration of an ensemble of their own references.
refitted=($(for s in "${kept[@]}"; do [ -e "runs/refit_s$s/extractor.json" ] && echo "$s"; done))
calibration=runs/ens_ref
if [ ${#refitted[@]} -lt ${#kept[@]} ]; then
  stage "refits written: seeds ${refitted[*]} of ${kept[*]}"
  [ ${#refitted[@]} -ge 2 ] || { stage "fewer than two refits"; kill "$packer"; pack; exit 1; }
  ensemble ens_ref_refitted $(for s in "${refitted[@]}"; do echo "runs/ref_s$s"; done)
  calibration=runs/ens_ref_refitted
fi
ensemble ens_refit --refit-of "$calibration" $(for s in "${refitted[@]}"; do echo "runs/refit_s$s"; done)
kill "$packer"
pack
python3 -c "
import glob, json
for f in sorted(glob.glob('$work/*.json')):
    print(f.rsplit('/', 1)[1], 'test F1', round(json.load(open(f))['ner']['micro']['f1'], 4))"
