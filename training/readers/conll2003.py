"""CoNLL-2003 column files: one `Document` per article (`-DOCSTART-` starts an article)."""
from __future__ import annotations

import re
from pathlib import Path

from inference.schema import Document
from training.readers import ReaderError, read_text
from training.readers.tokens import build_document

_TAG = re.compile(r"O|[BI]-\S+")


def read(path: Path) -> list[Document]:
    """Read a CoNLL-2003 file (IOB1 or IOB2 tags in the last column)."""
    articles: list[Document] = []
    sentences: list[list[str]] = []
    entities: list[tuple[int, int, int, str]] = []
    tokens: list[str] = []
    open_label: str | None = None  # label of the entity that the last token belongs to

    def end_sentence() -> None:
        nonlocal tokens, open_label
        if tokens:
            sentences.append(tokens)
        tokens, open_label = [], None

    def end_article() -> None:
        nonlocal sentences, entities
        end_sentence()
        if sentences:
            articles.append(build_document(f"{path.stem}-{len(articles)}", sentences, entities))
        sentences, entities = [], []

    for lineno, line in enumerate(read_text(path).split("\n"), start=1):
        columns = line.split()
        if not columns:
            end_sentence()
            continue
        if columns[0] == "-DOCSTART-":
            end_article()
            continue
        if len(columns) < 2:
            raise ReaderError(path, lineno, f"expected at least 2 columns (token ... NER tag), got {line.strip()!r}")
        tag = columns[-1]
        if not _TAG.fullmatch(tag):
            raise ReaderError(path, lineno, f"invalid NER tag {tag!r} (expected O, B-X or I-X)")
        if tag == "O":
            open_label = None
        elif tag.startswith("I-") and tag[2:] == open_label:
            s, first, _, label = entities[-1]
            entities[-1] = (s, first, len(tokens) + 1, label)
        else:  # B-X, or I-X that starts an entity (IOB1)
            open_label = tag[2:]
            entities.append((len(sentences), len(tokens), len(tokens) + 1, open_label))
        tokens.append(columns[0])
    end_article()
    return articles
