"""Ablation over seeds: train a config with named variants (config overrides), evaluate each run
on its test split, and tabulate dev and test figures as mean and spread over the seeds.

Each (variant, seed) is a separate run directory under --runs; a run that already holds its
test metrics is reused, so an interrupted sweep continues where it stopped.

Usage:
  python benchmarks/ablation.py --config configs/conll04.yaml --seeds 13 14 15 \
      --variant baseline --variant init-ner:relations.init=ner --variant no-casing:ner.casing=false \
      --runs runs/ablation --out benchmarks/results/ablation/cpu_conll04.json
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

FIGURES = {  # column -> where it lies in a run's metrics.json (written by `training evaluate`)
    "ner dev": ("training", "ner", "best_dev"),
    "ner test": ("ner", "micro", "f1"),
    "rel dev (gold entities)": ("training", "relations", "best_dev"),
    "Rel+ test": ("relations", "strict", "micro", "f1"),
    "Rel+ test (gold entities)": ("relations", "gold_entities", "strict", "micro", "f1"),
}


def parse_variant(text: str) -> tuple[str, list[str]]:
    """`name:key=value,key=value` (or just `name`) -> (name, overrides)."""
    name, _, rest = text.partition(":")
    overrides = [item for item in rest.split(",") if item]
    if not name or any("=" not in item for item in overrides):
        raise SystemExit(f"error: --variant {text!r}: expected NAME or NAME:KEY=VALUE[,KEY=VALUE...]")
    return name, overrides


def run_one(config: Path, run_dir: Path, seed: int, overrides: list[str]) -> dict:
    """Train and evaluate one run (unless its metrics exist); returns its metrics."""
    metrics = run_dir / "metrics.json"
    if not metrics.is_file():
        sets = [arg for item in [f"seed={seed}", *overrides] for arg in ("--set", item)]
        subprocess.run([sys.executable, "-m", "training", "train", "--config", str(config), "--output", str(run_dir), *sets], check=True)
        subprocess.run([sys.executable, "-m", "training", "evaluate", "--model", str(run_dir), "--level", "sentence"], check=True)
    return json.loads(metrics.read_text(encoding="utf-8"))


def pick(metrics: dict, path: tuple[str, ...]) -> float | None:
    node = metrics
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return None if node is None else float(node)  # a refit has no dev score


def summary(values: list[float]) -> dict:
    return {
        "mean": statistics.fmean(values),
        "std": statistics.stdev(values) if len(values) > 1 else 0.0,
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def write_results(args: argparse.Namespace, variants: list[tuple[str, list[str]]], figures: dict[str, dict[int, dict]]) -> list[dict]:
    """Summaries over the runs done so far, written to --out; returns them."""
    results = []
    for name, overrides in variants:
        per_seed = figures[name]
        columns = {
            column: summary([v[column] for v in per_seed.values() if v[column] is not None])
            for column in FIGURES
            if any(v[column] is not None for v in per_seed.values())
        }
        results.append({"variant": name, "overrides": overrides, "seeds": per_seed, "summary": columns})
    record = {
        "config": str(args.config),
        "command": " ".join([Path(sys.argv[0]).as_posix(), *sys.argv[1:]]),
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "variants": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, type=Path)
    parser.add_argument("--variant", action="append", required=True, metavar="NAME[:KEY=VALUE,...]")
    parser.add_argument("--seeds", type=int, nargs="+", default=[13, 14, 15])
    parser.add_argument("--runs", type=Path, default=Path("runs/ablation"), help="folder of the run directories")
    parser.add_argument("--out", type=Path, required=True, help="results JSON")
    args = parser.parse_args()

    variants = [parse_variant(v) for v in args.variant]
    figures: dict[str, dict[int, dict]] = {name: {} for name, _ in variants}
    for seed in args.seeds:  # seeds outermost: a partial sweep still compares every variant
        for name, overrides in variants:
            metrics = run_one(args.config, args.runs / f"{name}-seed{seed}", seed, overrides)
            figures[name][seed] = {column: pick(metrics, path) for column, path in FIGURES.items()} | {"commit": metrics.get("commit")}
            results = write_results(args, variants, figures)  # after every run: a stopped sweep keeps its figures
    print("| variant | " + " | ".join(FIGURES) + " |")
    print("|---" * (len(FIGURES) + 1) + "|")
    for r in results:
        cells = [f"{r['summary'][c]['mean']:.3f} ± {r['summary'][c]['std']:.3f}" if c in r["summary"] else "–" for c in FIGURES]
        print(f"| {r['variant']} | " + " | ".join(cells) + " |")
    print(f"results written to {args.out}")


if __name__ == "__main__":
    main()
