"""The conservative sentence splitter behind relation candidates and sentence-by-sentence reading."""
from __future__ import annotations

from inference.sentences import split_sentences


def test_splits_at_sentence_ends_and_line_breaks():
    text = 'Mr. Smith went to Washington. He met the U.S. envoy J. Doe in Paris! "Great," he said.\nNew line'
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "Mr. Smith went to Washington.",
        "He met the U.S. envoy J. Doe in Paris!",
        '"Great," he said.',
        "New line",
    ]


def test_initialisms_states_and_list_numbers_end_no_sentence():
    text = ("Gloria Bistrita beat F.C. Valletta 2-1. Results: 1. Michael Schumacher 2. Damon Hill. "
            "He lives in Santa Clara, Calif. Since 1996. Prices rose.")
    assert [text[s:e] for s, e in split_sentences(text)] == [
        "Gloria Bistrita beat F.C. Valletta 2-1.",
        "Results: 1. Michael Schumacher 2. Damon Hill.",
        "He lives in Santa Clara, Calif. Since 1996.",
        "Prices rose.",
    ]
    # A line break ends a sentence whatever precedes it.
    text = "PRESS DIGEST - Iraq - Aug 22.\nBAGHDAD 1996-08-22\nThe U.S.\nNew line"
    assert [text[s:e] for s, e in split_sentences(text)] == ["PRESS DIGEST - Iraq - Aug 22.", "BAGHDAD 1996-08-22", "The U.S.", "New line"]


def test_spans_are_trimmed_and_cover_all_text():
    text = "  One. Two?\r\n\r\nThree  "
    spans = split_sentences(text)
    assert [text[s:e] for s, e in spans] == ["One.", "Two?", "Three"]
    # No visible character is lost between sentences.
    assert "".join("".join(text[s:e] for s, e in spans).split()) == "".join(text.split())


def test_empty_and_blank_text_have_no_sentences():
    assert split_sentences("") == [] and split_sentences(" \n\t ") == []
