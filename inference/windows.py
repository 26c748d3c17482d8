"""Raw text -> subword tokens -> overlapping windows, and back.

Training and inference both encode through `tokenize` and `make_windows`, so the two cannot
drift apart. A text of any length is tokenized once, without truncation; windows of at most
`max_length` tokens (special tokens included) overlap by `stride` tokens and start on word
boundaries where possible. Each token is later read from the one window that owns it
(`window_owners`), the one where it sits farthest from an edge, so merged predictions hold no
duplicates at window edges and nothing is cut off.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from transformers import PreTrainedTokenizerFast

from .casing import word_shape
from .sentences import sentence_of, split_sentences


# Characters the tokenizer would silently drop, gluing the words around them into one
# ("John\x00Smith"), or cannot encode at all (lone surrogates, which JSON escapes and Python
# strings can hold): replaced one for one, so offsets into the original text stay exact.
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b\ufeff]|[\ud800-\udfff]")


def tokenizer_text(text: str) -> str:
    """`text` as handed to the tokenizer, of the same length: control characters, zero-width
    spaces and BOMs become spaces (they separate words), lone surrogates U+FFFD."""
    return _UNSAFE.sub(lambda m: "\ufffd" if "\ud800" <= m.group() <= "\udfff" else " ", text)


@dataclass(frozen=True)
class WindowSpec:
    """Window size in tokens (special tokens included) and overlap between neighbours; with
    `sentences`, no window crosses a sentence boundary (inference.sentences): each sentence is
    read alone, as a model trained on single sentences saw them (long ones cut as texts are)."""

    max_length: int = 256
    stride: int = 64
    sentences: bool = False

    def __post_init__(self) -> None:
        if self.max_length < 8:
            raise ValueError(f"max_length must be at least 8 tokens, got {self.max_length}")
        if not 0 <= self.stride <= (self.max_length - 2) // 2:
            raise ValueError(
                f"stride must be between 0 and half the window body ({(self.max_length - 2) // 2}), got {self.stride}"
            )
        if not isinstance(self.sentences, bool):
            raise ValueError(f"sentences must be true or false, got {self.sentences!r}")


@dataclass
class TokenizedText:
    """Subword tokens of one text, with character offsets and word membership.

    Words are the tokenizer's pre-tokens (whitespace and punctuation split); `words[w]` is the
    character span of word `w` and `word_ids[t]` the word of token `t`.
    """

    input_ids: list[int]
    offsets: list[tuple[int, int]]
    word_ids: list[int]
    words: list[tuple[int, int]]
    shapes: list[int]  # per token, the casing shape of its word (inference.casing)
    sentence_starts: list[int] = field(default_factory=lambda: [0])  # first token of each sentence

    def word_starts(self) -> list[int]:
        """Index of the first token of each word."""
        first: list[int] = [-1] * len(self.words)
        for t, w in enumerate(self.word_ids):
            if first[w] < 0:
                first[w] = t
        return first


@dataclass(frozen=True)
class Window:
    """Tokens `[start, end)` of text number `text_index`."""

    text_index: int
    start: int
    end: int


def tokenize(tokenizer: PreTrainedTokenizerFast, texts: list[str]) -> list[TokenizedText]:
    """Tokenize whole texts (no truncation, no special tokens) keeping offsets and words.

    Offsets index the texts as given; see `tokenizer_text` for the characters read as spaces."""
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError("a fast (Rust) tokenizer is required: character offsets come from it")
    if not texts:
        return []
    enc = tokenizer(
        [tokenizer_text(t) for t in texts],
        add_special_tokens=False,
        return_offsets_mapping=True,
        truncation=False,
        verbose=False,
    )
    out = []
    for i, text in enumerate(texts):
        ids, offsets, raw_words = enc["input_ids"][i], enc["offset_mapping"][i], enc.word_ids(i)
        # Renumber words densely and drop zero-width tokens (they carry no text to label).
        keep_ids, keep_offsets, word_ids, words = [], [], [], []
        previous = None
        for tok, (s, e), w in zip(ids, offsets, raw_words):
            if e <= s:
                continue
            if w != previous or not words:
                words.append((s, e))
                previous = w
            else:
                words[-1] = (words[-1][0], e)
            keep_ids.append(tok)
            keep_offsets.append((s, e))
            word_ids.append(len(words) - 1)
        sentence = sentence_of(split_sentences(text), words)
        word_shapes = [word_shape(text[s:e]) for s, e in words]
        starts = [t for t, w in enumerate(word_ids) if t == 0 or sentence[w] != sentence[word_ids[t - 1]]]
        out.append(TokenizedText(keep_ids, keep_offsets, word_ids, words, [word_shapes[w] for w in word_ids], starts))
    return out


def make_windows(tokens: TokenizedText, spec: WindowSpec, text_index: int = 0) -> list[Window]:
    """Cover every token with windows of at most `spec.max_length - 2` tokens, overlapping by
    `spec.stride` (with `spec.sentences`, each sentence covered on its own, without overlap)."""
    n = len(tokens.input_ids)
    bounds = [*tokens.sentence_starts, n] if spec.sentences else [0, n]
    return [w for lo, hi in zip(bounds, bounds[1:]) for w in _cover(tokens, spec, text_index, lo, hi)]


def _cover(tokens: TokenizedText, spec: WindowSpec, text_index: int, lo: int, hi: int) -> list[Window]:
    """Windows over tokens [lo, hi)."""
    body = spec.max_length - 2
    if hi - lo <= body:
        return [Window(text_index, lo, hi)] if hi > lo else []

    def is_word_start(t: int) -> bool:
        return t == lo or t == hi or tokens.word_ids[t] != tokens.word_ids[t - 1]

    windows: list[Window] = []
    start = lo
    while True:
        end = min(start + body, hi)
        if end < hi:
            # End on a word boundary unless one word fills the whole window; always beyond the
            # previous window's end, so that every window reads tokens no earlier one reached.
            floor = max(start + body // 2, windows[-1].end if windows else lo)
            boundary = next((e for e in range(end, floor, -1) if is_word_start(e)), None)
            end = boundary if boundary is not None else end
        windows.append(Window(text_index, start, end))
        if end == hi:
            return windows
        # Next window starts `stride` tokens back, moved to the nearest word start before it
        # (more overlap) or else after it; mid-word only inside a word longer than that.
        nxt = end - spec.stride
        back = range(nxt, max(start + 1, nxt - body // 4) - 1, -1)
        nxt = next((s for s in [*back, *range(nxt + 1, end)] if is_word_start(s)), nxt)
        start = max(nxt, start + 1)


def window_owners(windows: list[Window]) -> list[tuple[int, int]]:
    """For consecutive windows of one text, the token range each window owns.

    Overlaps are split at their middle, so every token is owned by exactly one window, the
    one in which it has the most context on both sides.
    """
    owned = []
    for k, w in enumerate(windows):
        lo = w.start if k == 0 else (windows[k - 1].end + w.start) // 2
        hi = w.end if k == len(windows) - 1 else (w.end + windows[k + 1].start) // 2
        owned.append((lo, hi))
    return owned


def window_inputs(tokenizer: PreTrainedTokenizerFast, tokens: TokenizedText, window: Window) -> tuple[list[int], list[int]]:
    """The model input of a window, framed by the tokenizer's special tokens: (input ids, shape ids)."""
    ids = [tokenizer.cls_token_id, *tokens.input_ids[window.start : window.end], tokenizer.sep_token_id]
    return ids, [0, *tokens.shapes[window.start : window.end], 0]


def encoder_batch(
    inputs: list[tuple[list[int], list[int]]], pad_id: int, casing: bool, device: torch.device | str = "cpu"
) -> dict[str, torch.Tensor]:
    """Pad (input ids, shape ids) sequences into encoder inputs: input_ids, attention_mask and,
    where `casing`, the shapes as token_type_ids. Entities and relations both batch through it."""
    width = max(len(ids) for ids, _ in inputs)
    input_ids = torch.full((len(inputs), width), pad_id, dtype=torch.long)
    shapes = torch.zeros((len(inputs), width), dtype=torch.long)
    mask = torch.zeros((len(inputs), width), dtype=torch.long)
    for r, (ids, shape_ids) in enumerate(inputs):
        input_ids[r, : len(ids)] = torch.tensor(ids)
        shapes[r, : len(shape_ids)] = torch.tensor(shape_ids)
        mask[r, : len(ids)] = 1
    batch = {"input_ids": input_ids.to(device), "attention_mask": mask.to(device)}
    if casing:
        batch["token_type_ids"] = shapes.to(device)
    return batch
