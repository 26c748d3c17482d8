"""Where `extract_many` spends its time: cProfile of the inference path on BBC articles.

Prints the functions with the most own time and the share of the whole call spent inside the
encoders' forward passes (torch modules or ONNX Runtime sessions); the rest is the Python of
tokenization, windows, decoding and relation candidates. Writes the summary as JSON.

Usage: python benchmarks/profile_inference.py --model RUN [--articles 40] [--backend torch] [--out FILE]
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import this checkout's packages

from benchmarks.throughput import DEFAULT_DATA, load_articles  # noqa: E402

# The encoder calls of the inference path: a torch module call or an OnnxEncoder call, made
# directly by NerTagger.word_logits or RelationTagger.predict (the relation head is included:
# one linear layer over the pairs).
CALLEES = {("module.py", "_wrapped_call_impl"), ("onnx_backend.py", "__call__")}
CALLERS = {("ner.py", "word_logits"), ("relations.py", "predict")}


def encoder_seconds(stats: pstats.Stats) -> float:
    """Time inside the encoders' forward passes, summed over the calls the inference path makes."""
    total = 0.0
    for (filename, _, name), (_, _, _, _, callers) in stats.stats.items():
        if (Path(filename).name, name) not in CALLEES:
            continue
        for (caller_file, _, caller_name), timing in callers.items():
            if (Path(caller_file).name, caller_name) in CALLERS and "/inference/" in caller_file:
                total += timing[3]
    return total


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/profile_inference.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA)
    p.add_argument("--articles", type=int, default=40)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backend", default="torch")
    p.add_argument("--onnx-dir", type=Path)
    p.add_argument("--out", type=Path, help="summary JSON (default benchmarks/results/profile/RUNNAME_BACKEND.json)")
    args = p.parse_args(argv)
    import torch

    from inference import NewsExtractor, RunDirectoryError
    from training.evaluate import provenance, write_json

    torch.set_num_threads(args.threads)
    try:
        texts = load_articles(args.data, args.articles)
        extractor = NewsExtractor.from_pretrained(args.model, backend=args.backend, onnx_dir=args.onnx_dir)
    except (ValueError, RunDirectoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    extractor.extract_many(texts[:2])  # warm-up
    profiler = cProfile.Profile()
    profiler.enable()
    extractor.extract_many(texts)
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    encoder = encoder_seconds(stats)
    listing = io.StringIO()
    pstats.Stats(profiler, stream=listing).sort_stats("tottime").print_stats(15)
    print(listing.getvalue())
    summary = {"articles": len(texts), "backend": args.backend, "threads": args.threads, "seconds": total,
               "encoder_forward_seconds": encoder, "encoder_share": encoder / total,
               "top_own_time": listing.getvalue().splitlines()[-20:], "loadavg": Path("/proc/loadavg").read_text().split()[:3],
               **provenance()}
    print(f"{total:.2f} s, of which encoder forward {encoder:.2f} s ({100 * encoder / total:.1f}%)")
    out = args.out or REPO / "benchmarks" / "results" / "profile" / f"{args.model.resolve().name}_{args.backend}.json"
    write_json(summary, out)
    print(f"summary written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
