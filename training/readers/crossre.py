"""CrossRE JSON lines: one sentence per line, one `Document` each (id = doc_key)."""
from __future__ import annotations

from pathlib import Path

from inference.schema import Document
from training.readers import expect_int, expect_list, expect_object, expect_str, read_json_lines
from training.readers.tokens import build_document, check_tokens


def read(path: Path) -> list[Document]:
    """Read a CrossRE file; blank lines are skipped."""
    return read_json_lines(path, _document)


def _span(raw_first: object, raw_last: object, n_tokens: int, what: str) -> tuple[int, int]:
    """Validate an inclusive token range [first, last]."""
    first, last = expect_int(raw_first, f"{what} first token"), expect_int(raw_last, f"{what} last token")
    if not 0 <= first <= last < n_tokens:
        raise ValueError(f"{what} [{first}, {last}] lies outside the sentence ({n_tokens} tokens)")
    return first, last


def _document(record: object) -> Document:
    """Validate one CrossRE line and turn it into a Document; problems raise ValueError."""
    record = expect_object(record, "the line", ("doc_key", "sentence", "ner", "relations"))
    doc_key = expect_str(record["doc_key"], "doc_key")
    try:
        tokens = check_tokens(record["sentence"])
    except ValueError as err:
        raise ValueError(f"'sentence': {err}") from None
    entities: list[tuple[int, int, int, str]] = []
    index: dict[tuple[int, int], int] = {}
    for k, raw in enumerate(expect_list(record["ner"], "'ner'")):
        entry = expect_list(raw, f"ner {k}")
        if len(entry) != 3:
            raise ValueError(f"ner {k} must be [first, last, type], got {entry!r}")
        first, last = _span(entry[0], entry[1], len(tokens), f"ner {k}")
        index.setdefault((first, last), len(entities))
        entities.append((0, first, last + 1, expect_str(entry[2], f"ner {k} type")))
    relations = []
    for k, raw in enumerate(expect_list(record["relations"], "'relations'")):
        what = f"relation {k}"
        entry = expect_list(raw, what)
        if len(entry) < 5:
            raise ValueError(f"{what} must start with [h_first, h_last, t_first, t_last, type], got {entry!r}")
        head = _span(entry[0], entry[1], len(tokens), f"{what} head")
        tail = _span(entry[2], entry[3], len(tokens), f"{what} tail")
        for name, span in (("head", head), ("tail", tail)):
            if span not in index:
                raise ValueError(f"{what} {name} [{span[0]}, {span[1]}] is not an annotated entity")
        relations.append((index[head], index[tail], expect_str(entry[4], f"{what} type")))
    return build_document(doc_key, [tokens], entities, relations)
