"""`python -m inference predict`: entities of articles as JSON, one object per article."""
from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from .extractor import NewsExtractor, RunDirectoryError

_SURROGATE = re.compile("[\ud800-\udfff]")  # JSON can escape them; they are not text and cannot be printed


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
            raise ValueError(
                f"{name}:{line}: not valid UTF-8 (byte offset {err.start}, 0x{raw[err.start]:02x}); "
                "inputs must be UTF-8, convert it first (e.g. iconv -f latin1 -t utf-8)"
            ) from None
        if not jsonl:
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inference", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("predict", help="print the entities of each article as JSON")
    p.add_argument("--model", required=True, type=Path, help="run directory written by `python -m training train`")
    p.add_argument("inputs", nargs="*", help="text files, or - for standard input (default)")
    p.add_argument("--jsonl", action="store_true", help="inputs are JSON lines {\"id\", \"text\"}; output one line per article")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--min-score", type=float, help="leave out entities and relations scoring under this (0..1)")
    args = parser.parse_args(argv)
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
