"""Property-based tests (hypothesis, 1,000 examples each) of the pure functions every result
rests on: offsets, window merging, relation candidates, sentence splitting."""
from __future__ import annotations

import bisect

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inference.ner import decode_tags, word_tags
from inference.relations import RelationSchema, candidate_pairs, marker_ids, relation_inputs
from inference.sentences import split_sentences
from inference.windows import TokenizedText, WindowSpec, make_windows, tokenize, window_owners

PROPERTY = settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Text pieces that exercise the tokenizer: names, accents, Arabic and Persian, emoji, control and
# zero-width characters, markup, CRLF, long words; hypothesis also mixes in arbitrary characters.
PIECES = ["John", "Smith", "al-Khalifi", "U.S.", "José", "Zoë", "e\u0301", "محمد", "علی\u200cرضا", "😀", "👨\u200d👩\u200d👧",
          "\u200f", "\x00", "\u200b", "\ufeff", "<b>", "&amp;", "\r\n", "\n", " ", "  ", ".", "!", "?", '"', "'s", "3.5",
          "xqzxqzxqzxqzxqzxqzxqzxqz", "핑", "ﬁ"]
TEXTS = st.lists(st.one_of(st.sampled_from(PIECES), st.text(max_size=6)), max_size=40).map("".join)


@PROPERTY
@given(text=TEXTS, data=st.data())
def test_offsets_map_back_exactly(tokenizer, text: str, data):
    (toks,) = tokenize(tokenizer, [text])
    n = len(toks.input_ids)
    assert len(toks.offsets) == len(toks.word_ids) == len(toks.shapes) == n
    assert all(0 <= s < e <= len(text) for s, e in toks.offsets), "tokens are non-empty spans of the text"
    # In order; a character the normalizer expands (Hangul syllable -> jamo) gives several tokens
    # of the same span, but distinct spans never overlap, and words never do.
    assert all(a == b or a[1] <= b[0] for a, b in zip(toks.offsets, toks.offsets[1:])), "in order, not overlapping"
    assert all(a[1] <= b[0] for a, b in zip(toks.words, toks.words[1:])), "words in order, not overlapping"
    assert toks.word_ids == sorted(toks.word_ids) and (not n or toks.word_ids[-1] == len(toks.words) - 1)
    for w, (s, e) in enumerate(toks.words):  # a word runs from its first token's start to its last token's end
        mine = [toks.offsets[t] for t in range(n) if toks.word_ids[t] == w]
        assert (s, e) == (mine[0][0], mine[-1][1])
    # Entity spans on word boundaries -> word tags -> decoded spans: the same character spans.
    spans, w = [], 0
    while w < len(toks.words):
        length = data.draw(st.integers(0, 3))
        if length and w + length <= len(toks.words):
            spans.append((toks.words[w][0], toks.words[w + length - 1][1], data.draw(st.sampled_from(["Peop", "Org"]))))
        w += max(length, 1)
    tags = word_tags(toks.words, spans)
    decoded = [(toks.words[d.first_word][0], toks.words[d.last_word][1], d.label) for d in decode_tags(tags, [1.0] * len(tags))]
    assert decoded == spans


def words_of(lengths: list[int]) -> TokenizedText:
    """A synthetic tokenized text whose word k has lengths[k] subwords."""
    word_ids = [w for w, length in enumerate(lengths) for _ in range(length)]
    offsets = [(t, t + 1) for t in range(len(word_ids))]
    words = [(offsets[word_ids.index(w)][0], offsets[len(word_ids) - 1 - word_ids[::-1].index(w)][1]) for w in range(len(lengths))]
    return TokenizedText(list(range(len(word_ids))), offsets, word_ids, words, [0] * len(word_ids))


@st.composite
def window_cases(draw):
    max_length = draw(st.integers(8, 80))
    stride = draw(st.integers(0, (max_length - 2) // 2))
    # Mostly short words, sometimes one longer than a window.
    lengths = draw(st.lists(st.one_of(st.integers(1, 4), st.integers(1, 3 * max_length)), max_size=120))
    return words_of(lengths), WindowSpec(max_length, stride)


@PROPERTY
@given(case=window_cases())
def test_every_token_is_owned_by_exactly_one_window(case):
    tokens, spec = case
    n = len(tokens.input_ids)
    windows = make_windows(tokens, spec)
    if n == 0:
        assert windows == []
        return
    assert all(0 <= w.start < w.end <= n and w.end - w.start <= spec.max_length - 2 for w in windows)
    assert all(a.start < b.start and a.end < b.end and b.start <= a.end for a, b in zip(windows, windows[1:])), "advancing, no gap"
    owned = window_owners(windows)
    counts = [0] * n
    for w, (lo, hi) in zip(windows, owned):
        assert w.start <= lo <= hi <= w.end, "a window owns only tokens it holds"
        for t in range(lo, hi):
            counts[t] += 1
    assert counts == [1] * n


@st.composite
def candidate_cases(draw):
    n = draw(st.integers(0, 25))
    types = ["Loc", "Org", "Peop"]
    entities, spans, sentence_of = [], [], []
    char, token, sentence = 0, 0, 0
    for _ in range(n):
        char += draw(st.integers(0, 40))
        token += draw(st.integers(0, 15))
        sentence += draw(st.integers(0, 1))
        length = draw(st.integers(1, 4))
        entities.append((char, char + 5 * length, draw(st.sampled_from(types))))
        spans.append(None if draw(st.integers(0, 9)) == 0 else (token, token + length))  # None: no token inside
        char, token = char + 5 * length, token + length
    allowed = draw(st.one_of(st.none(), st.lists(st.lists(st.sampled_from(types), min_size=2, max_size=2), max_size=9)))
    schema = RelationSchema(["R"], types, [], allowed, draw(st.integers(0, 120)), draw(st.integers(8, 64)))
    return entities, spans, sentence_of_positions(sentence_of, n, draw), schema


def sentence_of_positions(_: list[int], n: int, draw) -> list[int]:
    """Sentence index of each entity: non-decreasing in text order."""
    return sorted(draw(st.lists(st.integers(0, 4), min_size=n, max_size=n)))


@PROPERTY
@given(case=candidate_cases())
def test_candidate_pairs_none_lost_none_duplicated_distance_honoured(case):
    entities, spans, sentence_of, schema = case
    pairs = candidate_pairs(entities, spans, sentence_of, schema)
    assert len(pairs) == len(set(pairs)), "no pair twice"
    allowed = None if schema.allowed is None else {tuple(p) for p in schema.allowed}
    budget = schema.max_length - 6
    expected = set()
    for i, (s_i, e_i, t_i) in enumerate(entities):
        for j, (s_j, e_j, t_j) in enumerate(entities):
            if i == j or spans[i] is None or spans[j] is None:
                continue
            near = sentence_of[i] == sentence_of[j] or max(s_i, s_j) - min(e_i, e_j) <= schema.max_distance
            fits = max(spans[i][1], spans[j][1]) - min(spans[i][0], spans[j][0]) <= budget
            if near and fits and (allowed is None or (t_i, t_j) in allowed):
                expected.add((i, j))
    assert set(pairs) == expected


@settings(max_examples=1000, deadline=None)
@given(text=TEXTS, data=st.data())
def test_relation_segments_hold_their_pairs(tokenizer, text: str, data):
    (toks,) = tokenize(tokenizer, [text])
    # Entities: some words of the text, in order.
    chosen = sorted(set(data.draw(st.lists(st.integers(0, max(len(toks.words) - 1, 0)), max_size=12)))) if toks.words else []
    entities = [(*toks.words[w], data.draw(st.sampled_from(["Loc", "Org", "Peop"]))) for w in chosen]
    schema = RelationSchema(["R"], ["Loc", "Org", "Peop"], [], None, data.draw(st.integers(0, 50)), data.draw(st.integers(10, 40)))
    segments, pairs = relation_inputs(tokenizer, toks, text, entities, schema, marker_ids(tokenizer, schema))
    assert len({(h, t) for h, t, _ in pairs}) == len(pairs), "each pair in one segment"
    sentences = split_sentences(text) or [(0, len(text))]
    starts = [s for s, _ in sentences]
    sentence_of = [max(0, bisect.bisect_right(starts, s) - 1) for s, _, _ in entities]
    spans = [(toks.word_ids.index(w), len(toks.word_ids) - toks.word_ids[::-1].index(w)) for w in chosen]
    assert {(h, t) for h, t, _ in pairs} <= set(candidate_pairs(entities, spans, sentence_of, schema))
    for h, t, s in pairs:
        segment = segments[s]
        assert len(segment.input_ids) <= schema.max_length and h in segment.marker_index and t in segment.marker_index


SENTENCE_PIECES = ["Mr.", "Smith", "went", "U.S.", "J.", "Doe", ".", "!", "?", "...", '"', "”", ")", "]", " ", "  ", "\n",
                   "\r\n", "\t", "He", "3", "said", "a.m.", "(", "“Great,”", "e.g.", "\u00a0", "\u2028"]


@PROPERTY
@given(text=st.lists(st.one_of(st.sampled_from(SENTENCE_PIECES), st.text(max_size=4)), max_size=40).map("".join))
def test_sentences_cover_the_text_without_overlap(text: str):
    spans = split_sentences(text)
    assert all(0 <= s < e <= len(text) for s, e in spans), "non-empty spans of the text"
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), "in order, not overlapping"
    assert all(not text[s].isspace() and not text[e - 1].isspace() for s, e in spans), "trimmed"
    covered = [False] * len(text)
    for s, e in spans:
        covered[s:e] = [True] * (e - s)
    assert all(c.isspace() for c, inside in zip(text, covered) if not inside), "only whitespace is left out"
