"""A conservative sentence splitter for raw news text: relation candidates pair within its
sentences, and a model trained on single sentences reads each of them alone.

Splits at line breaks and after . ! ? when whitespace and an upper-case letter, digit or opening
quote follow, except after common abbreviations, initials and initialisms ("Mr.", "Calif.", "J.",
"F.C.") and list numbers ("1. Schumacher 2. Hill"), so that it rarely cuts a sentence: a missed
split only adds candidate pairs and context, a wrong one loses them and can cut a name in two.
"""
from __future__ import annotations

import re

_ABBREVIATIONS = {
    "mr", "mrs", "ms", "dr", "prof", "sen", "rep", "gov", "gen", "col", "lt", "sgt", "capt", "st", "jr", "sr",
    "inc", "corp", "co", "ltd", "no", "vs", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
    "oct", "nov", "dec", "mt", "ft", "rev", "hon", "u.s", "u.k", "u.n", "e.g", "i.e", "a.m", "p.m",
    # US states as news datelines abbreviate them ("Santa Clara, Calif. The company ...").
    "ala", "ariz", "ark", "calif", "colo", "conn", "fla", "ga", "ill", "ind", "kan", "ky", "md", "mass",
    "mich", "minn", "miss", "mo", "mont", "neb", "nev", "okla", "ore", "pa", "tenn", "tex", "va", "vt",
    "wash", "wis", "wyo",
}
# Initials and initialisms ("J", "F.C", "N.J") and list numbers ("1", "12"), final period cut off.
_NO_END = re.compile(r"[a-z](?:\.[a-z])*|\d{1,2}")
_BOUNDARY = re.compile(r"""[.!?]["'”’)\]]*\s+(?=["“'‘(\[]?[A-Z0-9])|\n\s*""")


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences of `text` (whitespace between them is left out)."""
    spans, start = [], 0
    for m in _BOUNDARY.finditer(text):
        if m.group().startswith(".") and "\n" not in m.group():  # a line break always ends a sentence
            word = text[:m.start()].rsplit(None, 1)[-1].lower() if text[:m.start()].strip() else ""
            word = word.lstrip("\"'“‘([")
            if word in _ABBREVIATIONS or _NO_END.fullmatch(word):
                continue
        _add(text, start, m.start() + 1 if not m.group().startswith("\n") else m.start(), spans)
        start = m.end()
    _add(text, start, len(text), spans)
    return spans


def _add(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> None:
    # Keep closing quotes and brackets with their sentence; trim surrounding whitespace.
    while end < len(text) and text[end] in "\"'”’)]" and end > start:
        end += 1
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    if end > start:
        spans.append((start, end))


def sentence_of(sentences: list[tuple[int, int]], spans: list[tuple[int, int]]) -> list[int]:
    """For each of `spans` (ordered character spans, e.g. words), the index of the sentence of
    `sentences` it starts in, or of the last one before it (0 before the first): every span
    gets a sentence, so sentences partition a text's words without gaps."""
    out, k = [], 0
    for start, _ in spans:
        while k + 1 < len(sentences) and sentences[k + 1][0] <= start:
            k += 1
        out.append(k)
    return out
