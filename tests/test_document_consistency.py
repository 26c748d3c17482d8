"""benchmarks/document_consistency.py: the two ways of making an article's repeated names agree."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from inference.schema import Entity
from inference.windows import tokenize

LABELS = ["O", "B-ORG", "I-ORG", "B-PER", "I-PER"]
TEXT = "Smith met Jones . Smith left ."  # words: Smith met Jones . Smith left .


@pytest.fixture(scope="module")
def consistency():
    from benchmarks import document_consistency

    return document_consistency


def _probs(rows: dict[int, list[float]], words: int) -> np.ndarray:
    probs = np.tile([1.0, 0, 0, 0, 0], (words, 1))
    for k, row in rows.items():
        probs[k] = row
    return probs


def test_vote_gives_repeated_names_the_type_with_most_probability(consistency, tokenizer):
    toks = tokenize(tokenizer, [TEXT])[0]
    probs = _probs({0: [0, 0.1, 0, 0.9, 0], 2: [0, 0, 0, 1, 0], 4: [0, 0.6, 0, 0.4, 0]}, len(toks.words))
    entities = [Entity("T1", 0, 5, "Smith", "PER", 0.9), Entity("T2", 10, 15, "Jones", "PER", 1.0),
                Entity("T3", 18, 23, "Smith", "ORG", 0.6)]
    tagger = SimpleNamespace(id2label=dict(enumerate(LABELS)))
    voted = consistency.vote(tagger, entities, toks, probs)
    assert [e.label for e in voted] == ["PER", "PER", "PER"]  # PER 1.3 against ORG 0.7 over both Smiths


def test_smooth_mixes_the_occurrences_of_a_found_name(consistency, tokenizer):
    toks = tokenize(tokenizer, [TEXT])[0]
    probs = _probs({0: [0, 0, 0, 1, 0], 4: [0.8, 0, 0, 0.2, 0]}, len(toks.words))  # the second Smith missed
    found = [Entity("T1", 0, 5, "Smith", "PER", 1.0)]
    mixed = consistency.smooth(TEXT, found, toks, probs, 0.5)
    np.testing.assert_allclose(mixed[4], [0.6, 0, 0, 0.4, 0])  # halfway to the mean [0.4, 0, 0, 0.6, 0]
    np.testing.assert_allclose(mixed[0], [0.2, 0, 0, 0.8, 0])
    np.testing.assert_array_equal(mixed[1:4], probs[1:4])  # words of no found name untouched
    np.testing.assert_array_equal(consistency.smooth(TEXT, found, toks, probs, 0.0), probs)
