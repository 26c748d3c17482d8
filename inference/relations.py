"""Relations between entities: typed entity markers, all pairs of a segment in one forward pass.

A segment (a sentence, or the sentences between two entities up to `max_distance` apart) is
encoded once with typed markers around every entity in it:
`[CLS] <Peop> john smith </Peop> works for <Org> acme </Org> in <Loc> boston </Loc> . [SEP]`.
Each candidate pair (head, tail) is classified, as a relation type or none, from the encoder
states at the two opening markers, head first, so direction is kept. One pass serves all pairs
of a segment, in training and at inference.

Markers are the encoder's `[unusedN]` vocabulary entries, referred to by id only, so no text can
produce one and the tokenizer stays unchanged: one tokenization (`inference.windows.tokenize`)
serves entities and relations.
"""
from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, PreTrainedModel, PreTrainedTokenizerFast
from transformers.modeling_outputs import TokenClassifierOutput

from .casing import load_shape_table, save_encoder
from .schema import Entity, Relation, label_spans
from .sentences import split_sentences
from .windows import TokenizedText, encoder_batch

HEAD_FILE = "head.safetensors"


@dataclass
class RelationSchema:
    """Relation labels and how candidates are formed; stored under "relations" in extractor.json."""

    labels: list[str]  # classifier output k + 1 is labels[k]; output 0 is "no relation"
    entity_types: list[str]
    symmetric: list[str]  # labels that hold in both directions: reported once, head = earlier mention
    allowed: list[list[str]] | None  # (head type, tail type) pairs that may be related; None: all
    max_distance: int = 0  # pair entities of different sentences up to this many characters apart
    max_length: int = 128  # tokens per segment, markers and special tokens included
    context: bool = False  # the classifier also sees the max-pooled tokens between the two entities

    @classmethod
    def from_dict(cls, d: dict) -> RelationSchema:
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)


def marker_ids(tokenizer: PreTrainedTokenizerFast, schema: RelationSchema) -> dict[str, tuple[int, int]]:
    """Entity type -> (opening, closing) marker ids, taken from the unused vocabulary entries."""
    names = [f"[unused{k}]" for k in range(2 * len(schema.entity_types))]
    ids = tokenizer.convert_tokens_to_ids(names)
    if tokenizer.unk_token_id in ids:
        raise ValueError(f"the encoder's vocabulary lacks the {len(names)} [unusedN] entries used as entity markers")
    return {t: (ids[2 * k], ids[2 * k + 1]) for k, t in enumerate(schema.entity_types)}


@dataclass
class Segment:
    """One model input: tokens of a text range with every entity inside it marked."""

    input_ids: list[int]
    shapes: list[int]
    marker_index: dict[int, int] = field(default_factory=dict)  # entity index -> position of its opening marker
    closing_index: dict[int, int] = field(default_factory=dict)  # entity index -> position of its closing marker


def candidate_pairs(
    entities: list[tuple[int, int, str]],
    spans: list[tuple[int, int] | None],
    sentence_of: list[int],
    schema: RelationSchema,
) -> list[tuple[int, int]]:
    """Ordered pairs (head, tail) of entity indices that may be related: in the same sentence or
    within `max_distance` characters, of an allowed type pair, and close enough in tokens for
    both to fit one segment. Each pair appears once; the scan is linear in the entities times
    the number of neighbours that fit, so a long text cannot explode into all pairs."""
    allowed = None if schema.allowed is None else {tuple(p) for p in schema.allowed}
    order = sorted((k for k in range(len(entities)) if spans[k] is not None), key=lambda k: spans[k])
    budget = schema.max_length - 6  # special tokens and the pair's four markers
    pairs = []
    for n, i in enumerate(order):
        for j in order[n + 1 :]:
            if spans[j][0] - spans[i][0] > budget:
                break
            if max(spans[i][1], spans[j][1]) - spans[i][0] > budget:
                continue
            (s_i, e_i, t_i), (s_j, e_j, t_j) = entities[i], entities[j]
            if sentence_of[i] != sentence_of[j] and max(s_i, s_j) - min(e_i, e_j) > schema.max_distance:
                continue
            for h, t, ht, tt in ((i, j, t_i, t_j), (j, i, t_j, t_i)):
                if allowed is None or (ht, tt) in allowed:
                    pairs.append((h, t))
    return pairs


def token_span(tokens: TokenizedText, start: int, end: int) -> tuple[int, int] | None:
    """Tokens [a, b) inside the character span [start, end), or None if none is."""
    a = bisect.bisect_left(tokens.offsets, (start, -1))
    b = a
    while b < len(tokens.offsets) and tokens.offsets[b][1] <= end:
        b += 1
    return (a, b) if b > a else None


def build_segment(
    tokens: TokenizedText,
    lo: int,
    hi: int,
    spans: list[tuple[int, int] | None],
    types: list[str],
    markers: dict[str, tuple[int, int]],
    special: tuple[int, int],
    by_start: list[tuple[int, int]],
) -> Segment:
    """Tokens [lo, hi) framed by special tokens, with typed markers around each entity inside.

    `by_start`: (first token, entity index) of the entities with a token span, sorted, so that
    only the entities starting in [lo, hi) are looked at (segments x entities would be quadratic)."""
    opens, closes = {}, {}
    first = bisect.bisect_left(by_start, (lo, -1))
    for _, k in by_start[first : bisect.bisect_left(by_start, (hi, -1))]:
        span = spans[k]
        if span[1] <= hi:
            opens.setdefault(span[0], []).append(k)
            closes.setdefault(span[1], []).append(k)
    segment = Segment([special[0]], [0])
    for t in range(lo, hi + 1):
        for k in closes.get(t, []):
            segment.closing_index[k] = len(segment.input_ids)
            segment.input_ids.append(markers[types[k]][1])
            segment.shapes.append(0)
        for k in opens.get(t, []):
            segment.marker_index[k] = len(segment.input_ids)
            segment.input_ids.append(markers[types[k]][0])
            segment.shapes.append(0)
        if t < hi:
            segment.input_ids.append(tokens.input_ids[t])
            segment.shapes.append(tokens.shapes[t])
    segment.input_ids.append(special[1])
    segment.shapes.append(0)
    return segment


def relation_inputs(
    tokenizer: PreTrainedTokenizerFast,
    tokens: TokenizedText,
    text: str,
    entities: list[tuple[int, int, str]],
    schema: RelationSchema,
    markers: dict[str, tuple[int, int]],
) -> tuple[list[Segment], list[tuple[int, int, int]]]:
    """The segments of one text and its candidate pairs as (head, tail, segment index).

    Training and inference both build their inputs here. A segment is the sentence (or
    sentences) of a pair; one too long for `max_length` with all its markers is covered by
    half-overlapping windows instead, and its pair goes to the first window holding both
    entities. So the number of encoder passes stays linear in the text's length, however few
    sentence ends it has; a pair that no window holds is not a candidate.
    """
    sentences = split_sentences(text) or [(0, len(text))]
    starts = [s for s, _ in sentences]
    sentence_of = [max(0, bisect.bisect_right(starts, s) - 1) for s, _, _ in entities]
    sentence_tokens = [token_span(tokens, s, e) or (0, 0) for s, e in sentences]
    spans = [token_span(tokens, s, e) for s, e, _ in entities]
    by_start = sorted((s[0], k) for k, s in enumerate(spans) if s is not None)
    span_starts = [start for start, _ in by_start]
    types = [t for _, _, t in entities]
    special = (tokenizer.cls_token_id, tokenizer.sep_token_id)
    budget = schema.max_length - 2
    segments: list[Segment] = []
    keys: dict[tuple[int, int], int] = {}
    windows: dict[tuple[int, int], list[tuple[int, int]]] = {}
    pairs = []
    for i, j in candidate_pairs(entities, spans, sentence_of, schema):
        first, last = min(spans[i][0], spans[j][0]), max(spans[i][1], spans[j][1])
        a, b = sorted((sentence_of[i], sentence_of[j]))
        lo, hi = min(sentence_tokens[a][0], first), max(sentence_tokens[b][1], last)
        if _marked_length(lo, hi, span_starts) > budget:
            if (lo, hi) not in windows:
                windows[(lo, hi)] = _cover(lo, hi, span_starts, budget)
            lo, hi = next(((wl, wh) for wl, wh in windows[(lo, hi)] if wl <= first and last <= wh), (-1, -1))
            if lo < 0:
                continue
        if (lo, hi) not in keys:
            keys[(lo, hi)] = len(segments)
            segments.append(build_segment(tokens, lo, hi, spans, types, markers, special, by_start))
        segment = keys[(lo, hi)]
        if i in segments[segment].marker_index and j in segments[segment].marker_index:
            pairs.append((i, j, segment))
    return segments, pairs


def _cover(lo: int, hi: int, span_starts: list[int], budget: int) -> list[tuple[int, int]]:
    """Half-overlapping token ranges over [lo, hi), each as long as fits `budget` with its markers."""
    ranges = []
    start = lo
    while True:
        # The longest range from `start` that fits (marked length grows with the end).
        low, high = start + 1, hi
        while low < high:
            mid = (low + high + 1) // 2
            low, high = (mid, high) if _marked_length(start, mid, span_starts) <= budget else (low, mid - 1)
        ranges.append((start, low))
        if low >= hi:
            return ranges
        start = max(start + 1, (start + low) // 2)


def pairs_by_segment(pairs: list[tuple[int, int, int]]) -> dict[int, list[tuple[int, int]]]:
    """Segment index -> its (head, tail) pairs, from `relation_inputs`' (head, tail, segment)."""
    grouped: dict[int, list[tuple[int, int]]] = {}
    for h, t, s in pairs:
        grouped.setdefault(s, []).append((h, t))
    return grouped


def pair_positions(segment: Segment, head: int, tail: int) -> tuple[int, int, int, int]:
    """(head marker, tail marker, context start, context end) of a pair in its segment. The
    context is the tokens between the two entities, after the earlier one's closing marker and
    before the later one's opening marker: empty where they touch or nest."""
    first, second = sorted((head, tail), key=segment.marker_index.__getitem__)
    lo, hi = segment.closing_index[first] + 1, segment.marker_index[second]
    return segment.marker_index[head], segment.marker_index[tail], lo, max(lo, hi)


def _marked_length(lo: int, hi: int, span_starts: list[int]) -> int:
    """Tokens of [lo, hi) plus two markers per entity starting inside (an upper bound)."""
    return hi - lo + 2 * (bisect.bisect_left(span_starts, hi) - bisect.bisect_left(span_starts, lo))


class RelationModel(torch.nn.Module):
    """An encoder and a linear classifier over the states of the head's and tail's opening
    markers and, with `context`, the max-pooled states between the two entities (as SpERT's
    localized context: the words that say how two names relate mostly lie between them).

    `encoder` is a Hugging Face model or anything called the same way (`OnnxEncoder`)."""

    def __init__(self, encoder: PreTrainedModel | Any, num_labels: int, dropout: float = 0.1, context: bool = False) -> None:
        super().__init__()
        self.encoder = encoder
        self.context = context
        self.dropout = torch.nn.Dropout(dropout)
        self.classifier = torch.nn.Linear((3 if context else 2) * encoder.config.hidden_size, num_labels)

    def forward(
        self, input_ids, attention_mask, pair_row, head_index, tail_index, context_start, context_end,
        token_type_ids=None, labels=None,
    ):
        """`pair_row[k]` is the segment of pair k; `head_index`/`tail_index` its marker positions;
        tokens [`context_start`, `context_end`) of its segment lie between its two entities."""
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        parts = [states[pair_row, head_index], states[pair_row, tail_index]]
        if self.context:
            position = torch.arange(states.shape[1], device=states.device)
            inside = (position >= context_start[:, None]) & (position < context_end[:, None])  # pairs x tokens
            pooled = states[pair_row].masked_fill(~inside[..., None], torch.finfo(states.dtype).min).max(1).values
            parts.append(torch.where(inside.any(1, keepdim=True), pooled, torch.zeros_like(pooled)))  # adjacent: zeros
        pair = torch.cat(parts, dim=-1)
        logits = self.classifier(self.dropout(pair))
        loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return TokenClassifierOutput(loss=loss, logits=logits)

    def save(self, directory: Path) -> None:
        """Encoder via save_pretrained, classifier as safetensors: no pickle anywhere."""
        save_encoder(self.encoder, directory)
        save_file({k: v.contiguous() for k, v in self.classifier.state_dict().items()}, str(directory / HEAD_FILE))

    @classmethod
    def load(cls, directory: Path, schema: RelationSchema, encoder: Any = None) -> RelationModel:
        """The saved model; `encoder` replaces the saved encoder's forward (an `OnnxEncoder`)."""
        if encoder is None:
            encoder = load_shape_table(AutoModel.from_pretrained(directory, use_safetensors=True), directory)
        model = cls(encoder, len(schema.labels) + 1, context=schema.context)
        model.classifier.load_state_dict(load_file(str(directory / HEAD_FILE)))
        return model


def collate_segments(
    segments: list[Segment], pairs: list[tuple[int, int, int]], pad_id: int, casing: bool, device: torch.device | str = "cpu"
) -> dict[str, torch.Tensor]:
    """Pad segments into one batch; `pairs` are (row in `segments`, *`pair_positions`). Training
    and inference share it."""
    batch = encoder_batch([(s.input_ids, s.shapes) for s in segments], pad_id, casing, device)
    for k, name in enumerate(("pair_row", "head_index", "tail_index", "context_start", "context_end")):
        batch[name] = torch.tensor([p[k] for p in pairs], dtype=torch.long, device=device)
    return batch


class RelationTagger:
    """Classifies candidate pairs among given entities, segments of many texts batched together."""

    def __init__(
        self, model: RelationModel, tokenizer: PreTrainedTokenizerFast, schema: RelationSchema, casing: bool
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.schema = schema
        self.casing = casing
        self.markers = marker_ids(tokenizer, schema)
        self.temperature = 1.0  # set from the run's calibration (inference.calibration)

    @torch.inference_mode()
    def predict(
        self, texts: list[str], tokenized: list[TokenizedText], entities: list[list[Entity]], batch_size: int = 32
    ) -> list[list[Relation]]:
        """Relations of each text among its entities: the best label of each candidate pair, if not
        none, scored with that label's probability."""
        segments: list[tuple[int, Segment, list[tuple[int, int]]]] = []  # (text, segment, its pairs)
        for k, (text, toks, ents) in enumerate(zip(texts, tokenized, entities)):
            segs, pairs = relation_inputs(self.tokenizer, toks, text, label_spans(ents), self.schema, self.markers)
            segments.extend((k, segs[s], ps) for s, ps in pairs_by_segment(pairs).items())
        results: list[list[Relation]] = [[] for _ in texts]
        order = sorted(range(len(segments)), key=lambda n: len(segments[n][1].input_ids))
        device = next(self.model.parameters()).device
        self.model.eval()
        for b in range(0, len(order), batch_size):
            batch = [segments[n] for n in order[b : b + batch_size]]
            flat = [(row, h, t) for row, (_, _, ps) in enumerate(batch) for h, t in ps]
            positions = [(row, *pair_positions(batch[row][1], h, t)) for row, h, t in flat]
            inputs = collate_segments([s for _, s, _ in batch], positions, self.tokenizer.pad_token_id, self.casing, device)
            probs = (self.model(**inputs).logits.float() / self.temperature).softmax(-1).cpu()
            best_p, best = probs.max(-1)
            for (row, h, t), p, label in zip(flat, best_p.tolist(), best.tolist()):
                if label > 0:
                    k = batch[row][0]
                    # The label's probability alone: the extractor's `score` adds the entities' scores.
                    results[k].append(Relation(entities[k][h].id, entities[k][t].id, self.schema.labels[label - 1], p))
        return [self._finish(rels, ents) for rels, ents in zip(results, entities)]

    def _finish(self, relations: list[Relation], entities: list[Entity]) -> list[Relation]:
        """Symmetric labels once per unordered pair (the higher score, head = earlier mention); text order."""
        position = {e.id: e.start for e in entities}
        kept: dict[tuple, Relation] = {}
        for r in relations:
            if r.label in self.schema.symmetric:
                a, b = sorted((r.head, r.tail), key=position.__getitem__)
                if (a, b, r.label) not in kept or r.score > kept[(a, b, r.label)].score:
                    kept[(a, b, r.label)] = Relation(a, b, r.label, r.score)
            else:
                kept[(r.head, r.tail, r.label)] = r
        return sorted(kept.values(), key=lambda r: (position[r.head], position[r.tail], r.label))
