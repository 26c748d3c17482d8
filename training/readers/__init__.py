"""Corpus readers: every annotated format becomes a list of `inference.schema.Document`.

Errors in the input are reported as one-line `ReaderError`s, "FILE:LINE: reason".
"""
from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from pathlib import Path

from inference.schema import Document

ANNOTATED_FORMATS = ("conll2003", "spert", "crossre", "jsonl")
FORMATS = (*ANNOTATED_FORMATS, "text")  # text: raw articles, no annotations (training/readers/text.py)


class ReaderError(ValueError):
    """Malformed input at a given line of a given file."""

    def __init__(self, path: str | Path, line: int, reason: str) -> None:
        super().__init__(f"{path}:{line}: {reason}")
        self.path = path
        self.line = line
        self.reason = reason


def read_text(path: Path) -> str:
    """Read a UTF-8 file (a leading BOM is dropped); invalid bytes raise a ReaderError naming the line."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise ReaderError(path, line, f"invalid UTF-8 byte 0x{data[err.start]:02x}") from None


def read_json_lines(path: Path, to_document: Callable[[object], Document]) -> list[Document]:
    """One document per non-blank JSON line; invalid JSON or a ValueError from `to_document`
    becomes a ReaderError naming the line."""
    documents = []
    for lineno, line in enumerate(read_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise ReaderError(path, lineno, f"invalid JSON: {err.msg} (column {err.colno})") from None
        try:
            documents.append(to_document(record))
        except ValueError as err:
            raise ReaderError(path, lineno, str(err)) from None
    return documents


def expect_object(value: object, what: str, fields: tuple[str, ...] = ()) -> dict:
    """Return `value` if it is a JSON object holding `fields`, else raise ValueError."""
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object, got {type(value).__name__}")
    for name in fields:
        if name not in value:
            raise ValueError(f"{what} has no field {name!r}")
    return value


def expect_list(value: object, what: str) -> list:
    """Return `value` if it is a JSON list, else raise ValueError."""
    if not isinstance(value, list):
        raise ValueError(f"{what} must be a list, got {type(value).__name__}")
    return value


def expect_int(value: object, what: str) -> int:
    """Return `value` if it is an integer (not a bool), else raise ValueError."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{what} must be an integer, got {value!r}")
    return value


def expect_str(value: object, what: str) -> str:
    """Return `value` if it is a non-empty string, else raise ValueError."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return value


def read_documents(path: str | Path, format: str) -> list[Document]:
    """Read the corpus file (or, for `text`, folder) `path` written in `format` (one of FORMATS)."""
    if format not in FORMATS:
        raise ValueError(f"unknown format {format!r}; expected one of: {', '.join(FORMATS)}")
    return importlib.import_module(f"{__name__}.{format}").read(Path(path))
