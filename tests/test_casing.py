"""Word shapes, the casing signal of uncased encoders, and the tokens that carry them."""
from __future__ import annotations

import pytest

from inference.casing import SHAPES, word_shape
from inference.windows import tokenize


@pytest.mark.parametrize("word,shape", [("news", "lower"), ("Japan", "title"), ("NATO", "upper"), ("A", "title"),
                                        ("McDonald", "mixed"), ("1996-12-06", "other"), ("الخليفي", "other")])
def test_word_shape(word: str, shape: str) -> None:
    assert SHAPES[word_shape(word)] == shape


def test_every_token_carries_its_words_shape(tokenizer) -> None:
    text = "JAPAN beat Syria 2-1 in the McDonaldsCup ."
    toks = tokenize(tokenizer, [text])[0]
    assert len(toks.shapes) == len(toks.input_ids) > len(toks.words)  # some words are several tokens
    for t, w in enumerate(toks.word_ids):
        s, e = toks.words[w]
        assert toks.shapes[t] == word_shape(text[s:e])
    assert [SHAPES[toks.shapes[toks.word_starts()[w]]] for w in range(3)] == ["upper", "lower", "title"]
