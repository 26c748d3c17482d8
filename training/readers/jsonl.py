"""The project's own JSON lines format: one `Document` per line, character offsets.

A line is {"id", "text", "entities": [{"start", "end", "label", "text"?}], "relations":
[{"head", "tail", "label"}], "sentences"?: [[start, end]], "tokens"?: [[start, end]]}.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from inference.schema import Document, RelationMention, Span
from training.readers import expect_int, expect_list, expect_object, expect_str, read_json_lines


def read(path: Path) -> list[Document]:
    """Read a JSON lines file of documents; blank lines are skipped."""
    return read_json_lines(path, _document)


def write_jsonl(documents: Iterable[Document], path: str | Path) -> None:
    """Write `documents` in the format that `read` reads back unchanged."""
    with Path(path).open("w", encoding="utf-8", newline="\n") as out:
        for doc in documents:
            record = {
                "id": doc.id,
                "text": doc.text,
                "entities": [
                    {"start": s.start, "end": s.end, "label": s.label, "text": doc.text[s.start : s.end]}
                    for s in doc.entities
                ],
                "relations": [{"head": r.head, "tail": r.tail, "label": r.label} for r in doc.relations],
                "sentences": [list(span) for span in doc.sentences],
                "tokens": [list(span) for span in doc.tokens],
            }
            out.write(json.dumps(record, ensure_ascii=False) + "\n")


def _spans(value: object, what: str, n: int, allow_empty: bool) -> list[tuple[int, int]]:
    """Validate a list of [start, end] character spans inside a text of length n."""
    spans = []
    for k, raw in enumerate(expect_list(value, f"'{what}s'")):
        pair = expect_list(raw, f"{what} {k}")
        if len(pair) != 2:
            raise ValueError(f"{what} {k} must be [start, end], got {pair!r}")
        start, end = expect_int(pair[0], f"{what} {k} start"), expect_int(pair[1], f"{what} {k} end")
        if not (0 <= start <= end <= n and (allow_empty or start < end)):
            raise ValueError(f"{what} {k} [{start}, {end}] lies outside the text (length {n}) or is empty")
        spans.append((start, end))
    return spans


def _document(record: object) -> Document:
    """Validate one line and turn it into a Document; problems raise ValueError."""
    record = expect_object(record, "the line", ("id", "text"))
    doc_id = expect_str(record["id"], "id")
    text = record["text"]
    if not isinstance(text, str):
        raise ValueError(f"text must be a string, got {type(text).__name__}")
    entities = []
    for k, raw in enumerate(expect_list(record.get("entities", []), "'entities'")):
        entity = expect_object(raw, f"entity {k}", ("start", "end", "label"))
        start, end = expect_int(entity["start"], f"entity {k} start"), expect_int(entity["end"], f"entity {k} end")
        if not 0 <= start < end <= len(text):
            raise ValueError(f"entity {k} [{start}, {end}) is empty or lies outside the text (length {len(text)})")
        if "text" in entity and entity["text"] != text[start:end]:
            raise ValueError(f"entity {k} text {entity['text']!r} differs from text[{start}:{end}] {text[start:end]!r}")
        entities.append(Span(start, end, expect_str(entity["label"], f"entity {k} label")))
    relations = []
    for k, raw in enumerate(expect_list(record.get("relations", []), "'relations'")):
        relation = expect_object(raw, f"relation {k}", ("head", "tail", "label"))
        head, tail = expect_int(relation["head"], f"relation {k} head"), expect_int(relation["tail"], f"relation {k} tail")
        for name, value in (("head", head), ("tail", tail)):
            if not 0 <= value < len(entities):
                raise ValueError(f"relation {k} {name} is entity {value} but there are {len(entities)} entities")
        relations.append(RelationMention(head, tail, expect_str(relation["label"], f"relation {k} label")))
    return Document(
        id=doc_id,
        text=text,
        entities=entities,
        relations=relations,
        sentences=_spans(record.get("sentences", []), "sentence", len(text), allow_empty=True),
        tokens=_spans(record.get("tokens", []), "token", len(text), allow_empty=False),
    )
