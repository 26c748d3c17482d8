"""Windows over long texts: coverage, ownership, word boundaries, and merging without loss or duplicates."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from inference.ner import NerTagger, bio_labels, decode_tags, word_tags
from inference.sentences import split_sentences
from inference.windows import WindowSpec, make_windows, tokenize, window_owners

LONG = (
    "TEHRAN— A Qatari Foreign Ministry delegation headed by Mohammad bin Abdul Aziz al-Khalifi met "
    "Hossein Amir Abdollahian. محمد بن عبدالعزيز الخليفي visited Doha; José Müller and Zoë Ångström of "
    "Société Générale watched. "
) * 12


class PositionFreeModel(torch.nn.Module):
    """Logits depend on the token id alone, so any correct windowing gives the same answer."""

    def __init__(self, vocab_size: int, labels: list[str]) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(0)
        self.table = torch.nn.Parameter(torch.randn(vocab_size, len(labels), generator=gen) * 3)
        self.config = SimpleNamespace(id2label=dict(enumerate(labels)))

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def forward(self, input_ids, attention_mask):
        return SimpleNamespace(logits=self.table[input_ids])


@pytest.mark.parametrize("max_length,stride", [(16, 4), (24, 11), (40, 0), (64, 16)])
def test_windows_cover_every_token_once_when_owned(tokenizer, max_length, stride):
    toks = tokenize(tokenizer, [LONG])[0]
    windows = make_windows(toks, WindowSpec(max_length, stride))
    assert windows[0].start == 0 and windows[-1].end == len(toks.input_ids)
    assert all(w.end - w.start <= max_length - 2 for w in windows)
    owned = window_owners(windows)
    assert owned[0][0] == 0 and owned[-1][1] == len(toks.input_ids)
    assert all(a[1] == b[0] for a, b in zip(owned, owned[1:])), "owned ranges must tile the text"
    assert all(w.start <= lo <= hi <= w.end for w, (lo, hi) in zip(windows, owned))
    # Windows overlap by about `stride` tokens and cut between words, unless a word is too long.
    word_length = {w: toks.word_ids.count(w) for w in set(toks.word_ids)}
    for a, b in zip(windows, windows[1:]):
        assert a.end - b.start >= stride - max_length // 4
        w = toks.word_ids[b.start]
        assert w != toks.word_ids[b.start - 1] or word_length[w] > (max_length - 2) // 4


@pytest.mark.parametrize("max_length", [16, 64, 512])
def test_sentence_windows_read_each_sentence_alone(tokenizer, max_length):
    toks = tokenize(tokenizer, [LONG])[0]
    sentences = split_sentences(LONG)
    assert len(toks.sentence_starts) == len(sentences) == 12
    windows = make_windows(toks, WindowSpec(max_length, 4, sentences=True))
    owned = window_owners(windows)
    assert sum(hi - lo for lo, hi in owned) == len(toks.input_ids) and owned[-1][1] == len(toks.input_ids)
    for w in windows:  # no window reads across a sentence boundary
        inside = {k for k, (s, e) in enumerate(sentences) for t in range(w.start, w.end) if s <= toks.offsets[t][0] < e}
        assert len(inside) == 1 and w.end - w.start <= max_length - 2
    if max_length == 512:  # every sentence fits: one window each, exactly the sentence's tokens
        assert [w.start for w in windows] == toks.sentence_starts


def test_one_giant_word_is_cut_but_kept(tokenizer):
    text = "start " + "qzx" * 30 + " end"  # one word of about 45 subwords
    toks = tokenize(tokenizer, [text])[0]
    windows = make_windows(toks, WindowSpec(16, 4))
    assert len(toks.words) == 3 and len(toks.input_ids) > 30
    assert windows[-1].end == len(toks.input_ids) and len(windows) > 2
    owned = window_owners(windows)
    assert sum(hi - lo for lo, hi in owned) == len(toks.input_ids)


def test_offsets_point_into_the_original_text(tokenizer):
    toks = tokenize(tokenizer, [LONG])[0]
    for s, e in toks.offsets:
        assert 0 <= s < e <= len(LONG) and LONG[s:e].strip() == LONG[s:e]
    assert any("الخليفي" == LONG[s:e] for s, e in toks.words)
    assert any("Müller" == LONG[s:e] for s, e in toks.words)


@pytest.mark.parametrize("max_length,stride", [(16, 4), (24, 11), (40, 0), (100, 30)])
def test_merged_windows_equal_one_big_window(tokenizer, max_length, stride):
    model = PositionFreeModel(tokenizer.vocab_size, bio_labels(["LOC", "ORG", "PER"]))
    whole = NerTagger(model, tokenizer, WindowSpec(4096, 0)).predict([LONG])[0]
    windowed = NerTagger(model, tokenizer, WindowSpec(max_length, stride)).predict([LONG, "short text", ""], batch_size=3)
    assert len(whole) > 20
    assert [(e.start, e.end, e.label) for e in windowed[0]] == [(e.start, e.end, e.label) for e in whole]
    assert [e.score for e in windowed[0]] == pytest.approx([e.score for e in whole], abs=1e-5)
    assert windowed[2] == []
    for e in windowed[0]:
        assert LONG[e.start : e.end] == e.text and 0.0 <= e.score <= 1.0


def test_word_tags_and_decoding_round_trip():
    words = [(0, 4), (5, 10), (11, 16), (17, 20), (21, 27)]
    tags = word_tags(words, [(0, 10, "PER"), (17, 27, "LOC")])
    assert tags == ["B-PER", "I-PER", "O", "B-LOC", "I-LOC"]
    spans = decode_tags(tags, [0.9, 0.8, 0.99, 0.7, 0.6])
    assert [(s.first_word, s.last_word, s.label) for s in spans] == [(0, 1, "PER"), (3, 4, "LOC")]
    # An I- tag that continues nothing starts an entity; a type change splits.
    spans = decode_tags(["I-ORG", "I-PER", "O", "I-PER"], [1.0] * 4)
    assert [(s.first_word, s.last_word, s.label) for s in spans] == [(0, 0, "ORG"), (1, 1, "PER"), (3, 3, "PER")]


@pytest.mark.parametrize("max_length,stride", [(7, 0), (16, 8), (16, -1)])
def test_bad_window_settings_are_refused(max_length, stride):
    with pytest.raises(ValueError, match="max_length|stride"):
        WindowSpec(max_length, stride)


def test_viterbi_keeps_entities_whole_and_valid():
    import numpy as np

    from inference.ner import iob2_transitions, viterbi

    labels = bio_labels(["Org", "Peop"])  # O, B-Org, I-Org, B-Peop, I-Peop

    def row(**p):
        r = np.full(len(labels), 0.01)
        for tag, v in p.items():
            r[labels.index(tag.replace("_", "-"))] = v
        return r / r.sum()

    start, allowed = iob2_transitions(labels)
    # Greedy would read B-Org I-Peop I-Org: three entities of two types out of one name.
    probs = np.stack([row(B_Org=0.6, B_Peop=0.3), row(I_Peop=0.5, I_Org=0.4), row(I_Org=0.9)])
    assert [labels[i] for i in viterbi([probs], start, allowed)[0]] == ["B-Org", "I-Org", "I-Org"]
    # A text may not open with I-; a valid greedy path is returned unchanged.
    assert [labels[i] for i in viterbi([np.stack([row(I_Org=0.6, B_Org=0.3), row(O=0.9)])], start, allowed)[0]] == ["B-Org", "O"]
    valid = np.stack([row(B_Peop=0.9), row(I_Peop=0.9), row(O=0.9)])
    assert viterbi([valid], start, allowed) == [valid.argmax(-1).tolist()]
    assert viterbi([np.zeros((0, len(labels)))], start, allowed) == [[]]


def test_viterbi_over_many_texts_equals_one_text_at_a_time():
    """Texts decoded together, in groups padded to the longest, get the paths of the plain
    dynamic programme run on each alone (ties included: many rows repeat their values)."""
    import numpy as np

    from inference.ner import iob2_transitions, viterbi

    labels = bio_labels(["LOC", "MISC", "ORG", "PER"])
    start, allowed = iob2_transitions(labels)

    def alone(probs: np.ndarray) -> list[int]:
        log_p = np.log(np.clip(probs, 1e-12, None))
        penalty = np.where(allowed, 0.0, -np.inf)
        score, back = np.where(start, log_p[0], -np.inf), np.zeros(probs.shape, dtype=np.int64)
        for w in range(1, len(probs)):
            total = score[:, None] + penalty
            back[w], score = total.argmax(0), total.max(0) + log_p[w]
        path = [int(score.argmax())]
        for w in range(len(probs) - 1, 0, -1):
            path.append(int(back[w, path[-1]]))
        return path[::-1]

    rng = np.random.default_rng(0)
    texts = []
    for n in [*rng.integers(0, 60, size=150), 400, 350]:  # the last two exceed the budget: each decoded alone
        logits = rng.normal(size=(n, len(labels))).astype(np.float32) * 3
        if n > 3:
            logits[n // 2] = 1.0  # a row of ties
        z = np.exp(logits - logits.max(-1, keepdims=True)) if n else logits
        texts.append(z / z.sum(-1, keepdims=True) if n else z)
    paths = viterbi(texts, start, allowed, budget=300)
    assert sum(1 for p in texts if len(p) and not (start[p.argmax(-1)[0]] and allowed[p.argmax(-1)[:-1], p.argmax(-1)[1:]].all())) > 50
    assert paths == [alone(p) if len(p) else [] for p in texts]
