"""`python -m inference predict|serve|export-onnx`: entities and relations of articles as JSON
lines or HTML pages; the same over HTTP; a run's encoders as ONNX graphs for `--backend onnx`."""
from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterator
from contextlib import nullcontext
from html import escape
from pathlib import Path
from typing import ContextManager, TextIO

from tqdm import tqdm

from .extractor import NewsExtractor, RunDirectoryError, read_settings
from .onnx_backend import BACKENDS
from .schema import Article


def expand_inputs(paths: list[str]) -> list[str]:
    """Files as given ('-' is standard input); a folder stands for its *.txt and *.jsonl files, recursively, sorted."""
    out = []
    for name in paths or ["-"]:
        folder = Path(name)
        if name != "-" and folder.is_dir():
            found = sorted(str(f) for f in folder.rglob("*") if f.suffix in (".txt", ".jsonl") and f.is_file())
            if not found:
                raise ValueError(f"{name}: the folder holds no .txt or .jsonl files")
            out += found
        else:
            out.append(name)
    return out

_SURROGATE = re.compile("[\ud800-\udfff]")  # JSON can escape them; they are not text and cannot be printed


def read_inputs(paths: list[str], jsonl: bool) -> list[tuple[str, str]]:
    """(id, text) pairs from files (or '-' for standard input); JSONL lines (files named *.jsonl, or
    all inputs with `jsonl`) carry {"id", "text"}."""
    items = []
    for name in paths or ["-"]:
        try:
            raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as err:
            raise ValueError(f"{name}: cannot read ({err.strerror})") from None
        try:
            content = raw.decode("utf-8")
        except UnicodeDecodeError as err:
            line = raw[: err.start].count(b"\n") + 1
            raise ValueError(
                f"{name}:{line}: not valid UTF-8 (byte offset {err.start}, 0x{raw[err.start]:02x}); "
                "inputs must be UTF-8, convert it first (e.g. iconv -f latin1 -t utf-8)"
            ) from None
        if not (jsonl or name.endswith(".jsonl")):
            items.append(("stdin" if name == "-" else name, content))
            continue
        # Lines end at \n only: U+2028, U+0085 and the like may stand unescaped inside a JSON string.
        for n, line in enumerate(content.split("\n"), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{name}:{n}: invalid JSON ({err.msg})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise ValueError(f"{name}:{n}: expected an object with a string field 'text'")
            item = (str(obj.get("id", f"{name}:{n}")), obj["text"])
            for field, value in zip(("id", "text"), item):
                bad = _SURROGATE.search(value)
                if bad:
                    raise ValueError(f"{name}:{n}: {field!r} holds a lone surrogate escape at character {bad.start()}: not Unicode text")
            items.append(item)
    return items


def positive_int(value: str) -> int:
    """An argument that counts something (a batch size): an integer of at least 1."""
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {value!r}")
    return number


def min_score_arg(value: str) -> float | str:
    """--min-score: a number or "run"."""
    if value == "run":
        return value
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f'expected a number in [0, 1] or "run", got {value!r}') from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("predict", help="entities and relations of each article as JSON lines or HTML")
    p.add_argument("--model", required=True, type=Path, help="run directory written by `python -m training train`")
    p.add_argument("inputs", nargs="*", help="text files, *.jsonl files, folders of them, or - for standard input (default)")
    p.add_argument("--jsonl", action="store_true", help="read every input as JSON lines {\"id\", \"text\"} (files named *.jsonl always are)")
    p.add_argument("--format", choices=["jsonl", "html"], default="jsonl",
                   help="jsonl: one JSON object per article; html: pages with the entities highlighted and relations drawn")
    p.add_argument("--out", type=Path, help="output file (default: standard output); with --format html, "
                   "a name ending .html gets one page for all articles, any other a folder with a page per article")
    p.add_argument("--batch-size", type=positive_int, default=32, help="texts (windows) per model call")
    p.add_argument("--min-score", type=min_score_arg, metavar="S|run",
                   help='leave out entities and relations scoring under S (0..1), or under the per-type thresholds the run stores '
                   '("run"); default: the run\'s decision floors, chosen on dev for the best F1; 0 keeps everything')
    p.add_argument("--backend", choices=BACKENDS, default="torch", help="encoder forward pass: torch or ONNX Runtime (export-onnx)")
    p.add_argument("--onnx-dir", type=Path, help="folder of the exported graphs (default: RUN/onnx)")
    x = commands.add_parser("export-onnx", help="export a run's encoders to ONNX for --backend onnx / onnx-int8")
    x.add_argument("--model", required=True, type=Path, help="run directory")
    x.add_argument("--out", type=Path, help="folder for the graphs (default: RUN/onnx)")
    x.add_argument("--quantize", choices=["int8"], help="also write int8 graphs (dynamic quantization) for --backend onnx-int8")
    s = commands.add_parser("serve", help="serve the run over HTTP (POST /extract, GET /health, /model, /docs)")
    s.add_argument("--model", required=True, type=Path, help="run directory written by `python -m training train`")
    s.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback only)")
    s.add_argument("--port", type=int, default=8000)
    s.add_argument("--max-articles", type=int, default=64, help="articles per request")
    s.add_argument("--max-chars", type=int, default=200_000, help="characters per article")
    s.add_argument("--max-body-bytes", type=int, default=2_000_000, help="request body size")
    s.add_argument("--timeout", type=float, default=60.0, help="seconds a request may take (then 504)")
    s.add_argument("--max-batch", type=int, default=32, help="texts gathered from concurrent requests into one model call")
    s.add_argument("--max-wait-ms", type=float, default=5.0, help="how long a request waits for others to batch with")
    args = parser.parse_args(argv)
    if args.command == "serve":
        return serve_command(args)
    if args.command == "export-onnx":
        return export_command(args)
    try:
        items = read_inputs(expand_inputs(args.inputs), args.jsonl)
        extractor = NewsExtractor.from_pretrained(args.model, backend=args.backend, onnx_dir=args.onnx_dir)
        if args.format == "html":
            write_html(list(predict(extractor, items, args.batch_size, args.min_score)), args.out, extractor.entity_labels)
        else:
            with open_output(args.out) as out:
                for article in predict(extractor, items, args.batch_size, args.min_score):
                    out.write(json.dumps(article.to_dict(), ensure_ascii=False) + "\n")
    except (ValueError, OSError, RunDirectoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def predict(extractor: NewsExtractor, items: list[tuple[str, str]], batch_size: int, min_score: float | str | None) -> Iterator[Article]:
    """Articles of (id, text) items in input order, a batch at a time, with a progress bar on standard error."""
    with tqdm(total=len(items), unit="article", file=sys.stderr, disable=None) as bar:
        for k in range(0, len(items), batch_size):
            chunk = items[k : k + batch_size]
            yield from extractor.extract_many([t for _, t in chunk], batch_size, [i for i, _ in chunk], min_score)
            bar.update(len(chunk))


def open_output(path: Path | None) -> ContextManager[TextIO]:
    """The output file (parent folders made), or standard output, left open."""
    if path is None:
        return nullcontext(sys.stdout)
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.open("w", encoding="utf-8")


def write_html(articles: list[Article], out: Path | None, labels: list[str]) -> None:
    """One page for all articles (standard output, or OUT.html), or a folder with a page per article and an index."""
    from .render import page, render_articles

    if out is None or out.suffix == ".html":
        title = articles[0].id if len(articles) == 1 else f"{len(articles)} articles"
        with open_output(out) as f:
            f.write(render_articles(articles, title, labels))
        return
    out.mkdir(parents=True, exist_ok=True)
    index = []
    for k, article in enumerate(articles, start=1):
        name = f"{k:04d}-{re.sub(r'[^A-Za-z0-9_.-]+', '_', article.id.rsplit('/', 1)[-1])[:60]}.html"  # index first: unique
        (out / name).write_text(render_articles([article], article.id, labels), encoding="utf-8")
        index.append(f'<li><a href="{escape(name)}">{escape(article.id)}</a>: '
                     f"{len(article.entities)} entities, {len(article.relations)} relations</li>")
    (out / "index.html").write_text(page(f"{len(articles)} articles", f"<ul>{''.join(index)}</ul>", labels), encoding="utf-8")


def serve_command(args: argparse.Namespace) -> int:
    """Load the run and serve it until interrupted (server imports only for this command)."""
    from .server import ServerLimits, serve

    try:
        limits = ServerLimits(max_body_bytes=args.max_body_bytes, max_articles=args.max_articles, max_chars=args.max_chars,
                          timeout_s=args.timeout, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms)
        serve(args.model, args.host, args.port, limits)
    except (ValueError, RunDirectoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


def export_command(args: argparse.Namespace) -> int:
    """Write the ONNX graphs of a run (fp32, and int8 with --quantize int8)."""
    from .onnx_backend import export_run  # torch.onnx and onnxruntime only here

    try:
        settings = read_settings(args.model)
        parts = ["ner"] + (["relations"] if settings.get("relations") else [])
        written = export_run(args.model, args.out or args.model / "onnx", settings["casing"], parts, args.quantize == "int8")
    except ImportError as err:
        print(f"error: exporting needs onnx and onnxruntime ({err}): pip install onnx onnxruntime", file=sys.stderr)
        return 2
    except (ValueError, RunDirectoryError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for path in written:
        print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")
    return 0
