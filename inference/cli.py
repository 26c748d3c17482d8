"""`python -m inference predict`: entities of articles as JSON, one object per article;
`python -m inference export-onnx`: a run's encoders as ONNX graphs for `predict --backend onnx`."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .extractor import NewsExtractor, RunDirectoryError, read_settings
from .onnx_backend import BACKENDS


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
    p.add_argument("--backend", choices=BACKENDS, default="torch", help="encoder forward pass: torch or ONNX Runtime (export-onnx)")
    p.add_argument("--onnx-dir", type=Path, help="folder of the exported graphs (default: RUN/onnx)")
    x = commands.add_parser("export-onnx", help="export a run's encoders to ONNX for --backend onnx / onnx-int8")
    x.add_argument("--model", required=True, type=Path, help="run directory")
    x.add_argument("--out", type=Path, help="folder for the graphs (default: RUN/onnx)")
    x.add_argument("--quantize", choices=["int8"], help="also write int8 graphs (dynamic quantization) for --backend onnx-int8")
    args = parser.parse_args(argv)
    if args.command == "export-onnx":
        return export_command(args)
    try:
        items = read_inputs(args.inputs, args.jsonl)
        extractor = NewsExtractor.from_pretrained(args.model, backend=args.backend, onnx_dir=args.onnx_dir)
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
