"""CoNLL04 in SpERT JSON: a list of sentences, one `Document` each."""
from __future__ import annotations

import json
import re
from pathlib import Path

from inference.schema import Document
from training.readers import ReaderError, expect_int, expect_list, expect_object, expect_str, read_text
from training.readers.tokens import build_document, check_tokens

_SPACE = re.compile(r"[ \t\n\r]*")


def read(path: Path) -> list[Document]:
    """Read a SpERT JSON file; errors name the line where the offending list item starts."""
    text = read_text(path)
    decoder = json.JSONDecoder()

    def line_of(pos: int) -> int:
        return text.count("\n", 0, pos) + 1

    def skip_space(pos: int) -> int:
        return _SPACE.match(text, pos).end()  # type: ignore[union-attr]  # `*` always matches

    pos = skip_space(0)
    if not text.startswith("[", pos):
        raise ReaderError(path, line_of(pos), "expected a JSON list of sentences")
    pos = skip_space(pos + 1)
    documents: list[Document] = []
    while not text.startswith("]", pos):
        index = len(documents)
        try:
            item, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as err:
            raise ReaderError(path, err.lineno, f"invalid JSON: {err.msg} (column {err.colno})") from None
        try:
            documents.append(_document(item, index))
        except ValueError as err:
            raise ReaderError(path, line_of(pos), f"item {index}: {err}") from None
        pos = skip_space(end)
        if text.startswith(",", pos):
            pos = skip_space(pos + 1)
            if text.startswith("]", pos):
                raise ReaderError(path, line_of(pos), f"trailing ',' after item {index}")
        elif pos == len(text):
            raise ReaderError(path, line_of(pos), f"unexpected end of file after item {index}: the list is not closed")
        elif not text.startswith("]", pos):
            raise ReaderError(path, line_of(pos), f"expected ',' or ']' after item {index}")
    if skip_space(pos + 1) < len(text):
        raise ReaderError(path, line_of(skip_space(pos + 1)), "unexpected data after the list")
    return documents


def _document(item: object, index: int) -> Document:
    """Validate one SpERT sentence and turn it into a Document; problems raise ValueError."""
    item = expect_object(item, "the item", ("tokens", "entities", "relations"))
    tokens = check_tokens(item["tokens"])
    entities = []
    for k, raw in enumerate(expect_list(item["entities"], "'entities'")):
        entity = expect_object(raw, f"entity {k}", ("start", "end", "type"))
        start, end = expect_int(entity["start"], f"entity {k} start"), expect_int(entity["end"], f"entity {k} end")
        if end > len(tokens):
            raise ValueError(f"entity {k} ends at token {end} but the sentence has {len(tokens)} tokens")
        if not 0 <= start < end:
            raise ValueError(f"entity {k} has an empty or negative token range [{start}, {end})")
        entities.append((0, start, end, expect_str(entity["type"], f"entity {k} type")))
    relations = []
    for k, raw in enumerate(expect_list(item["relations"], "'relations'")):
        relation = expect_object(raw, f"relation {k}", ("head", "tail", "type"))
        head, tail = expect_int(relation["head"], f"relation {k} head"), expect_int(relation["tail"], f"relation {k} tail")
        for name, value in (("head", head), ("tail", tail)):
            if not 0 <= value < len(entities):
                raise ValueError(f"relation {k} {name} is entity {value} but there are {len(entities)} entities")
        relations.append((head, tail, expect_str(relation["type"], f"relation {k} type")))
    orig_id = item.get("orig_id", index)
    if not isinstance(orig_id, (str, int)) or isinstance(orig_id, bool):
        raise ValueError(f"orig_id must be a string or an integer, got {orig_id!r}")
    return build_document(str(orig_id), [tokens], entities, relations)
