"""Build a `Document` from tokenized sentences (shared by the CoNLL-2003, SpERT and CrossRE readers)."""
from __future__ import annotations

from collections.abc import Sequence

from inference.schema import Document, RelationMention, Span


def check_tokens(tokens: object) -> list[str]:
    """Return `tokens` if it is a non-empty list of non-empty strings, else raise ValueError with the reason."""
    if not isinstance(tokens, list) or not tokens:
        raise ValueError("the tokens must be a non-empty list of strings")
    for j, token in enumerate(tokens):
        if not isinstance(token, str) or not token:
            raise ValueError(f"token {j} must be a non-empty string, got {token!r}")
    return tokens


def build_document(
    doc_id: str,
    sentences: Sequence[Sequence[str]],
    entities: Sequence[tuple[int, int, int, str]] = (),
    relations: Sequence[tuple[int, int, str]] = (),
) -> Document:
    """Join tokens by spaces and sentences by newlines; map token-level annotations to characters.

    `entities` are (sentence index, first token, end token exclusive, label); `relations` are
    (head, tail, label) with head and tail indexing `entities`. Bad indices raise ValueError.
    """
    text_parts: list[str] = []
    token_spans: list[list[tuple[int, int]]] = []
    sentence_spans: list[tuple[int, int]] = []
    offset = 0
    for k, sentence in enumerate(sentences):
        if k:
            text_parts.append("\n")
            offset += 1
        spans = []
        for j, token in enumerate(sentence):
            if j:
                text_parts.append(" ")
                offset += 1
            spans.append((offset, offset + len(token)))
            text_parts.append(token)
            offset += len(token)
        token_spans.append(spans)
        sentence_spans.append((spans[0][0], spans[-1][1]) if spans else (offset, offset))
    spans_out = []
    for sentence, first, end, label in entities:
        if not (0 <= sentence < len(token_spans) and 0 <= first < end <= len(token_spans[sentence])):
            raise ValueError(f"entity (sentence {sentence}, tokens [{first}, {end})) lies outside the sentences")
        spans_out.append(Span(token_spans[sentence][first][0], token_spans[sentence][end - 1][1], label))
    return Document(
        id=doc_id,
        text="".join(text_parts),
        entities=spans_out,
        relations=[RelationMention(head, tail, label) for head, tail, label in relations],
        sentences=sentence_spans,
        tokens=[span for spans in token_spans for span in spans],
    )
