"""Word shapes, the casing signal of uncased encoders, and how headlines borrow them from their article."""
from __future__ import annotations

import re

import pytest

from inference.casing import SHAPES, text_shapes, word_shape
from inference.sentences import sentence_of, split_sentences
from inference.windows import tokenize

ARTICLE = (
    "SOCCER - JAPAN GET LUCKY WIN , CHINA IN SURPRISE DEFEAT .\n"
    "AL-AIN , United Arab Emirates 1996-12-06\n"
    "Japan began the defence of their Asian Cup title with a lucky 2-1 win against Syria .\n"
    "China lost to Uzbekistan in a surprise , the NATO observer said ."
)


def words_of(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in re.finditer(r"\w+|[^\w\s]", text)]


def recased(text: str) -> list[int]:
    words = words_of(text)
    return text_shapes(text, words, sentence_of(split_sentences(text), words))


def shapes_of(text: str) -> dict[str, str]:
    return {text[s:e]: SHAPES[k] for (s, e), k in zip(words_of(text), recased(text))}


@pytest.mark.parametrize("word,shape", [("news", "lower"), ("Japan", "title"), ("NATO", "upper"), ("A", "title"),
                                        ("McDonald", "mixed"), ("1996-12-06", "other"), ("الخليفي", "other")])
def test_word_shape(word: str, shape: str) -> None:
    assert SHAPES[word_shape(word)] == shape


def test_headline_words_take_their_shape_in_the_article() -> None:
    got = shapes_of(ARTICLE)
    assert got["JAPAN"] == "title" and got["CHINA"] == "title"  # "Japan", "China" open sentences: weaker evidence, used
    assert got["LUCKY"] == "lower" and got["WIN"] == "lower" and got["IN"] == "lower"  # "lucky", "win", "in" inside sentences
    assert got["GET"] == "upper" and got["SOCCER"] == "upper"  # nowhere else in the article: left as they are
    assert got["United"] == "title" and got["NATO"] == "upper"  # outside headlines nothing changes


def test_inside_a_sentence_outweighs_its_opening() -> None:
    text = "THE FED MOVES .\nThe Fed said the move was small ."
    assert shapes_of(text)["THE"] == "lower"  # "the" once inside a sentence beats "The" opening one
    assert shapes_of(text)["FED"] == "title"


def test_texts_without_a_body_keep_their_shapes() -> None:
    for text in ("SOCCER - JAPAN GET LUCKY WIN .", "SOCCER - JAPAN WIN .\nCHINA IN SURPRISE DEFEAT .", "Japan win ."):
        assert recased(text) == [word_shape(text[s:e]) for s, e in words_of(text)]


def test_tokenize_gives_each_token_the_recased_shape_of_its_word(tokenizer) -> None:
    # The whole article, then its headline alone (a prefix of it: offsets index both alike).
    toks = tokenize(tokenizer, [ARTICLE, ARTICLE.split("\n")[0]])
    for tok, want in zip(toks, ("title", "upper")):
        japan = next(w for w, (s, e) in enumerate(tok.words) if ARTICLE[s:e] == "JAPAN")
        assert {SHAPES[tok.shapes[t]] for t, w in enumerate(tok.word_ids) if w == japan} == {want}
