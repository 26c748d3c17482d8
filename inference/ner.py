"""Token classification over windows: predicted word tags -> entity spans with scores.

`NerTagger` wraps a token-classification model and its fast tokenizer. It is used as is by
`NewsExtractor` and by training (dev-set early stopping, evaluation), so every figure the
project reports goes through the code users run.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from .schema import Entity
from .windows import (
    TokenizedText,
    Window,
    WindowSpec,
    encoder_batch,
    make_windows,
    tokenize,
    window_inputs,
    window_owners,
)


def bio_labels(entity_types: list[str]) -> list[str]:
    """The IOB2 tag set of some entity types, in a fixed order (O first)."""
    return ["O"] + [f"{p}-{t}" for t in sorted(entity_types) for p in ("B", "I")]


def span_words(words: list[tuple[int, int]], starts: list[int], start: int, end: int) -> range:
    """The words (character spans in text order, `starts` their first characters) that the
    character span [start, end) covers: those whose first character lies inside it, or the word
    holding its start where none does."""
    inside = range(bisect.bisect_left(starts, start), bisect.bisect_left(starts, end))
    if not inside:
        k = bisect.bisect_left(starts, start) - 1
        if k >= 0 and words[k][0] < start < words[k][1]:
            return range(k, k + 1)
    return inside


def word_tags(words: list[tuple[int, int]], spans: list[tuple[int, int, str]]) -> list[str]:
    """IOB2 tag of each word (a character span), given entity character spans (`span_words`)."""
    tags = ["O"] * len(words)
    starts = [ws for ws, _ in words]
    for start, end, label in spans:
        for k, w in enumerate(span_words(words, starts, start, end)):
            tags[w] = f"{'B' if k == 0 else 'I'}-{label}"
    return tags


@dataclass
class TaggedSpan:
    """An entity as decoded from word tags: word range, type and the probability of each word's tag."""

    first_word: int
    last_word: int
    label: str
    probs: list[float]


def decode_tags(tags: list[str], probs: list[float]) -> list[TaggedSpan]:
    """IOB2 decoding; an I- tag that does not continue an entity of its type starts a new one."""
    spans: list[TaggedSpan] = []
    current: TaggedSpan | None = None
    for w, (tag, p) in enumerate(zip(tags, probs)):
        if tag == "O":
            current = None
            continue
        prefix, label = tag.split("-", 1)
        if prefix == "I" and current is not None and current.label == label and current.last_word == w - 1:
            current.last_word = w
            current.probs.append(p)
        else:
            current = TaggedSpan(w, w, label, [p])
            spans.append(current)
    return spans


def iob2_transitions(labels: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(start, allowed) for IOB2: `start[j]`, tag j may open a text; `allowed[i, j]`, tag j may
    follow tag i. I-X may only follow B-X or I-X."""
    inside = [t[2:] if t.startswith("I-") else None for t in labels]
    start = np.array([x is None for x in inside])
    allowed = np.array([[x is None or (prev[:2] in ("B-", "I-") and prev[2:] == x) for x in inside] for prev in labels])
    return start, allowed


def viterbi(texts: list[np.ndarray], start: np.ndarray, allowed: np.ndarray, budget: int = 1 << 15) -> list[list[int]]:
    """Per text, the most probable valid IOB2 tag sequence, given its (words x labels) probabilities.

    Constraints only forbid, so where the per-word argmax is valid it is the answer. The texts
    whose greedy path breaks a constraint are decoded together, in groups of similar length
    padded to at most `budget` words in all (about 64 news articles; a longer text alone), so the
    dynamic programme's step over a word is one NumPy call for the group: one text at a time it
    cost 1.4 ms an article, a quarter of the Python around the forward passes, which bounds
    throughput on a GPU (BENCHMARKS.md). Shorter texts of a group are padded with a tag that may
    follow any tag and itself (O), at probability 1, which changes no text's path.
    """
    paths: list[list[int]] = [[] for _ in texts]
    broken = []
    for i, probs in enumerate(texts):
        if len(probs) == 0:
            continue
        greedy = probs.argmax(-1)
        if start[greedy[0]] and allowed[greedy[:-1], greedy[1:]].all():
            paths[i] = greedy.tolist()
        else:
            broken.append(i)
    if not broken:
        return paths
    free = next(j for j in range(len(start)) if allowed[:, j].all() and allowed[j, j])
    penalty = np.where(allowed, 0.0, -np.inf)
    broken.sort(key=lambda i: len(texts[i]))
    g = 0
    while g < len(broken):
        size = 1  # the last member is the longest: grow the group while its padded block fits
        while g + size < len(broken) and (size + 1) * len(texts[broken[g + size]]) <= budget:
            size += 1
        members, g = broken[g : g + size], g + size
        length = len(texts[members[-1]])
        log_p = np.full((len(members), length, len(start)), -np.inf, dtype=np.float32)
        log_p[:, :, free] = 0.0
        for row, i in enumerate(members):
            log_p[row, : len(texts[i])] = np.log(np.clip(texts[i], 1e-12, None))
        score = np.where(start, log_p[:, 0], -np.inf)
        back = np.zeros(log_p.shape, dtype=np.int64)
        for w in range(1, length):
            total = score[:, :, None] + penalty
            back[:, w] = total.argmax(1)
            score = total.max(1) + log_p[:, w]
        tags = score.argmax(-1)
        path = [tags]
        for w in range(length - 1, 0, -1):
            tags = back[np.arange(len(members)), w, tags]
            path.append(tags)
        path = np.stack(path[::-1], axis=1)
        for row, i in enumerate(members):
            paths[i] = path[row, : len(texts[i])].tolist()
    return paths


def softmax(logits: np.ndarray) -> np.ndarray:
    """Softmax over the last axis, in NumPy (see `NerTagger.word_logits` for why not torch)."""
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def span_score(probs: list[float]) -> float:
    """Entity score: mean probability of the span's word tags (see docs/ARCHITECTURE.md)."""
    return float(sum(probs) / len(probs))


class NerTagger:
    """Finds entities in raw texts of any length with a token-classification model."""

    def __init__(
        self, model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast, spec: WindowSpec, casing: bool = False
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.spec = spec
        self.casing = casing  # feed word shapes as token-type ids (inference.casing)
        self.temperature = 1.0  # set from the run's calibration (inference.calibration)
        self.id2label = {int(k): v for k, v in model.config.id2label.items()}
        self.transitions = iob2_transitions([self.id2label[i] for i in range(len(self.id2label))])

    def window_batches(
        self, tokenized: list[TokenizedText], batch_size: int = 32
    ) -> tuple[list[Window], list[tuple[int, int]], list[tuple[list[int], dict[str, torch.Tensor]]]]:
        """The windows of all texts, the token range each owns, and the encoder batches over them:
        (window indices, padded inputs), windows sorted by length so that each batch pads little."""
        windows: list[Window] = []
        owners: list[tuple[int, int]] = []
        for i, toks in enumerate(tokenized):
            ws = make_windows(toks, self.spec, i)
            windows.extend(ws)
            owners.extend(window_owners(ws))
        order = sorted(range(len(windows)), key=lambda k: windows[k].end - windows[k].start)
        batches = []
        for b in range(0, len(order), batch_size):
            rows = order[b : b + batch_size]
            inputs = [window_inputs(self.tokenizer, tokenized[windows[k].text_index], windows[k]) for k in rows]
            batches.append((rows, encoder_batch(inputs, self.tokenizer.pad_token_id, self.casing, self.model.device)))
        return windows, owners, batches

    @torch.inference_mode()
    def word_logits(self, tokenized: list[TokenizedText], batch_size: int = 32) -> list[torch.Tensor]:
        """Per text, a (words x labels) tensor of tag logits, read from each word's first subword."""
        windows, owners, batches = self.window_batches(tokenized, batch_size)
        # Per-window and per-text work in NumPy: with several threads every small torch call is
        # an OpenMP parallel region, ~5 ms each here, which showed in the profile.
        token_logits = [np.zeros((len(t.input_ids), len(self.id2label)), dtype=np.float32) for t in tokenized]
        self.model.eval()
        for rows, encoded in batches:
            logits = self.model(**encoded).logits.float().cpu().numpy()
            for r, k in enumerate(rows):
                w, (lo, hi) = windows[k], owners[k]
                # +1: position 0 of the window is the leading special token.
                token_logits[w.text_index][lo:hi] = logits[r, lo - w.start + 1 : hi - w.start + 1]
        return [torch.from_numpy(x[np.asarray(t.word_starts(), dtype=np.intp)]) for x, t in zip(token_logits, tokenized)]

    def predict(
        self, texts: list[str], batch_size: int = 32, tokenized: list[TokenizedText] | None = None
    ) -> list[list[Entity]]:
        """Entities of each text, ids T1, T2, ... in text order (`tokenized`: texts already tokenized)."""
        tokenized = tokenized if tokenized is not None else tokenize(self.tokenizer, texts)
        probs = self.word_probs(tokenized, batch_size)
        paths = viterbi(probs, *self.transitions)
        return [self.decode(*row) for row in zip(texts, tokenized, probs, paths)]

    def word_probs(self, tokenized: list[TokenizedText], batch_size: int = 32) -> list[np.ndarray]:
        """Per text, a (words x labels) array of tag probabilities at the tagger's temperature."""
        return [softmax(logits.numpy() / self.temperature) for logits in self.word_logits(tokenized, batch_size)]

    def decode(self, text: str, tokenized: TokenizedText, probs: np.ndarray, ids: list[int] | None = None) -> list[Entity]:
        """The entities of one text from its (words x labels) tag probabilities: constrained
        IOB2 decoding (`ids`: its tag path when already decoded with the other texts'), then
        each span with its score."""
        ids = viterbi([probs], *self.transitions)[0] if ids is None else ids
        tags = [self.id2label[i] for i in ids]
        chosen = probs[np.arange(len(ids)), np.asarray(ids, dtype=np.intp)].tolist()
        entities = []
        for span in decode_tags(tags, chosen):
            start, end = tokenized.words[span.first_word][0], tokenized.words[span.last_word][1]
            entities.append(Entity(f"T{len(entities) + 1}", start, end, text[start:end], span.label, span_score(span.probs)))
        return entities
