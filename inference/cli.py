"""`python -m inference predict`: entities of articles as JSON, one object per article."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .extractor import NewsExtractor, RunDirectoryError


def read_inputs(paths: list[str], jsonl: bool) -> list[tuple[str, str]]:
    """(id, text) pairs from files (or '-' for standard input); JSONL lines carry {"id", "text"}."""
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
            raise ValueError(f"{name}:{line}: not valid UTF-8 (byte {err.start})") from None
        if not jsonl:
            items.append(("stdin" if name == "-" else name, content))
            continue
        for n, line in enumerate(content.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{name}:{n}: invalid JSON ({err.msg})") from None
            if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
                raise ValueError(f"{name}:{n}: expected an object with a string field 'text'")
            items.append((str(obj.get("id", f"{name}:{n}")), obj["text"]))
    return items


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("predict", help="print the entities of each article as JSON")
    p.add_argument("--model", required=True, type=Path, help="run directory written by `python -m training train`")
    p.add_argument("inputs", nargs="*", help="text files, or - for standard input (default)")
    p.add_argument("--jsonl", action="store_true", help="inputs are JSON lines {\"id\", \"text\"}; output one line per article")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--min-score", type=float, help="leave out entities and relations scoring under this (0..1)")
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
    try:
        items = read_inputs(args.inputs, args.jsonl)
        extractor = NewsExtractor.from_pretrained(args.model)
    except (ValueError, RunDirectoryError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        articles = extractor.extract_many(
            [t for _, t in items], batch_size=args.batch_size, ids=[i for i, _ in items], min_score=args.min_score
        )
    except ValueError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for article in articles:
        obj = article.to_dict()
        print(json.dumps(obj, ensure_ascii=False) if args.jsonl else json.dumps(obj, ensure_ascii=False, indent=2))
    return 0


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
