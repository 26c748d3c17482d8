"""Relations between entities: typed entity markers, one classification per candidate pair.

For a candidate (head, tail) the sentence(s) holding both are encoded with markers around the
two mentions, as PURE does: `[CLS] ... <h:Peop> john smith </h:Peop> works for <t:Org> acme
</t:Org> ... [SEP]`. The classifier reads the encoder states at the two opening markers and
predicts a relation type or none. Markers are the encoder's `[unusedN]` vocabulary entries,
referred to by id only, so no text can ever produce one and the tokenizer stays unchanged;
the text is tokenized once (`inference.windows.tokenize`) for entities and relations alike.
"""
from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModel, PreTrainedModel, PreTrainedTokenizerFast
from transformers.modeling_outputs import SequenceClassifierOutput

from .schema import Entity, Relation
from .sentences import split_sentences
from .windows import TokenizedText

NO_RELATION = "none"
HEAD_FILE = "head.safetensors"


@dataclass
class RelationSchema:
    """Relation labels and how candidates are formed; stored under "relations" in extractor.json."""

    labels: list[str]  # classifier output k + 1 is labels[k]; output 0 is "no relation"
    entity_types: list[str]
    symmetric: list[str]  # labels that hold in both directions: predicted once, head = earlier mention
    allowed: list[list[str]] | None  # (head type, tail type) pairs that may be related; None: all
    max_distance: int = 0  # pair entities of different sentences up to this many characters apart
    max_length: int = 128  # tokens per pair input, markers and special tokens included

    @classmethod
    def from_dict(cls, d: dict) -> RelationSchema:
        return cls(**d)

    def to_dict(self) -> dict:
        return asdict(self)

    def marker_tokens(self) -> list[str]:
        """Marker names in the order of their ids: <h:T>, </h:T>, <t:T>, </t:T> for each entity type T."""
        return [m for t in self.entity_types for m in (f"<h:{t}>", f"</h:{t}>", f"<t:{t}>", f"</t:{t}>")]


def marker_ids(tokenizer: PreTrainedTokenizerFast, schema: RelationSchema) -> dict[str, int]:
    """Marker name -> vocabulary id of an unused entry ([unused0], [unused1], ...)."""
    names = schema.marker_tokens()
    ids = tokenizer.convert_tokens_to_ids([f"[unused{k}]" for k in range(len(names))])
    if tokenizer.unk_token_id in ids:
        raise ValueError(
            f"the encoder's vocabulary lacks the {len(names)} [unusedN] entries used as entity markers"
        )
    return dict(zip(names, ids))


@dataclass
class PairInput:
    """The model input of one candidate pair."""

    input_ids: list[int]
    shapes: list[int]
    head_index: int  # position of the head's opening marker
    tail_index: int


def candidate_pairs(
    entities: list[tuple[int, int, str]], sentences: list[tuple[int, int]], schema: RelationSchema
) -> list[tuple[int, int]]:
    """Ordered pairs (head, tail) of entity indices that may be related: same sentence, or close
    enough (`max_distance`), and of an allowed type pair. Each pair appears once."""
    starts = [s for s, _ in sentences]
    sentence_of = [max(0, bisect.bisect_right(starts, e[0]) - 1) for e in entities]
    allowed = None if schema.allowed is None else {tuple(p) for p in schema.allowed}
    pairs = []
    for i, (hs, he, ht) in enumerate(entities):
        for j, (ts, te, tt) in enumerate(entities):
            if i == j:
                continue
            near = sentence_of[i] == sentence_of[j] or max(hs, ts) - min(he, te) <= schema.max_distance
            if near and (allowed is None or (ht, tt) in allowed):
                pairs.append((i, j))
    return pairs


def token_span(tokens: TokenizedText, start: int, end: int) -> tuple[int, int] | None:
    """Tokens [a, b) inside the character span [start, end), or None if none is."""
    token_starts = [s for s, _ in tokens.offsets]
    a = bisect.bisect_left(token_starts, start)
    b = a
    while b < len(tokens.offsets) and tokens.offsets[b][1] <= end:
        b += 1
    return (a, b) if b > a else None


def encode_pair(
    tokens: TokenizedText,
    head: tuple[tuple[int, int], str],
    tail: tuple[tuple[int, int], str],
    context: tuple[int, int],
    markers: dict[str, int],
    special: tuple[int, int],
    max_length: int,
) -> PairInput | None:
    """Tokens of `context` with typed markers around head and tail, cut to `max_length` around the
    pair; None if the pair alone does not fit."""
    (ha, hb), htype = head
    (ta, tb), ttype = tail
    budget = max_length - 6  # [CLS], [SEP] and four markers
    first, last = min(ha, ta), max(hb, tb)
    if last - first > budget:
        return None
    lo, hi = context
    # Centre the pair in the context when the context is too long.
    spare = budget - (last - first)
    lo = max(lo, min(first - spare // 2, hi - budget))
    hi = min(hi, lo + budget)
    opens: dict[int, list[tuple[str, int]]] = {}
    closes: dict[int, list[int]] = {}
    for role, (a, b), etype in (("h", (ha, hb), htype), ("t", (ta, tb), ttype)):
        opens.setdefault(a, []).append((role, markers[f"<{role}:{etype}>"]))
        closes.setdefault(b, []).append(markers[f"</{role}:{etype}>"])
    ids, shapes, index = [special[0]], [0], {}
    for t in range(lo, hi + 1):
        for m in closes.get(t, []):
            ids.append(m)
            shapes.append(0)
        for role, m in opens.get(t, []):
            index[role] = len(ids)
            ids.append(m)
            shapes.append(0)
        if t < hi:
            ids.append(tokens.input_ids[t])
            shapes.append(tokens.shapes[t])
    ids.append(special[1])
    shapes.append(0)
    return PairInput(ids, shapes, index["h"], index["t"])


def pair_inputs(
    tokenizer: PreTrainedTokenizerFast,
    tokens: TokenizedText,
    text: str,
    entities: list[tuple[int, int, str]],
    schema: RelationSchema,
    markers: dict[str, int],
) -> list[tuple[tuple[int, int], PairInput]]:
    """Candidate pairs of one text and their model inputs (training and inference share this)."""
    sentences = split_sentences(text) or [(0, len(text))]
    spans = [token_span(tokens, s, e) for s, e, _ in entities]
    sentence_tokens = [token_span(tokens, s, e) or (0, 0) for s, e in sentences]
    starts = [s for s, _ in sentences]
    special = (tokenizer.cls_token_id, tokenizer.sep_token_id)
    out = []
    for i, j in candidate_pairs(entities, sentences, schema):
        if spans[i] is None or spans[j] is None:
            continue
        si = max(0, bisect.bisect_right(starts, entities[min(i, j, key=lambda k: entities[k][0])][0]) - 1)
        sj = max(0, bisect.bisect_right(starts, entities[max(i, j, key=lambda k: entities[k][0])][0]) - 1)
        context = (sentence_tokens[si][0], max(sentence_tokens[sj][1], spans[i][1], spans[j][1]))
        context = (min(context[0], spans[i][0], spans[j][0]), context[1])
        pair = encode_pair(tokens, (spans[i], entities[i][2]), (spans[j], entities[j][2]), context, markers, special, schema.max_length)
        if pair is not None:
            out.append(((i, j), pair))
    return out


class RelationModel(torch.nn.Module):
    """An encoder and a linear classifier over the states of the two opening markers."""

    def __init__(self, encoder: PreTrainedModel, num_labels: int, dropout: float = 0.1) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = torch.nn.Dropout(dropout)
        self.classifier = torch.nn.Linear(2 * encoder.config.hidden_size, num_labels)

    def forward(self, input_ids, attention_mask, head_index, tail_index, token_type_ids=None, labels=None):
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state
        rows = torch.arange(states.shape[0], device=states.device)
        pair = torch.cat([states[rows, head_index], states[rows, tail_index]], dim=-1)
        logits = self.classifier(self.dropout(pair))
        loss = torch.nn.functional.cross_entropy(logits, labels) if labels is not None else None
        return SequenceClassifierOutput(loss=loss, logits=logits)

    def save(self, directory: Path) -> None:
        """Encoder via save_pretrained, classifier as safetensors: no pickle anywhere."""
        self.encoder.save_pretrained(directory, safe_serialization=True)
        save_file({k: v.contiguous() for k, v in self.classifier.state_dict().items()}, str(directory / HEAD_FILE))

    @classmethod
    def load(cls, directory: Path, num_labels: int) -> RelationModel:
        encoder = AutoModel.from_pretrained(directory, use_safetensors=True)
        model = cls(encoder, num_labels)
        model.classifier.load_state_dict(load_file(str(directory / HEAD_FILE)))
        return model


class RelationTagger:
    """Classifies candidate pairs among given entities, batched across texts."""

    def __init__(
        self, model: RelationModel, tokenizer: PreTrainedTokenizerFast, schema: RelationSchema, casing: bool
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.schema = schema
        self.casing = casing
        self.markers = marker_ids(tokenizer, schema)

    @torch.inference_mode()
    def predict(
        self, texts: list[str], tokenized: list[TokenizedText], entities: list[list[Entity]], batch_size: int = 64
    ) -> list[list[Relation]]:
        """Relations of each text among its entities, highest-scoring label per pair."""
        items = []  # (text index, head entity, tail entity, input)
        for k, (text, toks, ents) in enumerate(zip(texts, tokenized, entities)):
            spans = [(e.start, e.end, e.label) for e in ents]
            for (i, j), pair in pair_inputs(self.tokenizer, toks, text, spans, self.schema, self.markers):
                items.append((k, ents[i], ents[j], pair))
        results: list[list[Relation]] = [[] for _ in texts]
        order = sorted(range(len(items)), key=lambda n: len(items[n][3].input_ids))
        device = next(self.model.parameters()).device
        self.model.eval()
        for b in range(0, len(order), batch_size):
            batch = [items[n] for n in order[b : b + batch_size]]
            probs = self.model(**collate_pairs([x[3] for x in batch], self.tokenizer.pad_token_id, self.casing, device)).logits
            probs = probs.float().softmax(-1).cpu()
            best_p, best = probs.max(-1)
            for (k, head, tail, _), p, label in zip(batch, best_p.tolist(), best.tolist()):
                if label > 0:
                    results[k].append(Relation(head.id, tail.id, self.schema.labels[label - 1], p))
        return [self._finish(rels, ents) for rels, ents in zip(results, entities)]

    def _finish(self, relations: list[Relation], entities: list[Entity]) -> list[Relation]:
        """Symmetric labels once per unordered pair (the higher score, head = earlier mention); text order."""
        position = {e.id: e.start for e in entities}
        kept: dict[tuple, Relation] = {}
        for r in relations:
            if r.label in self.schema.symmetric:
                a, b = sorted((r.head, r.tail), key=position.__getitem__)
                key = (a, b, r.label)
                if key not in kept or r.score > kept[key].score:
                    kept[key] = Relation(a, b, r.label, r.score)
            else:
                kept[(r.head, r.tail, r.label)] = r
        return sorted(kept.values(), key=lambda r: (position[r.head], position[r.tail], r.label))


def collate_pairs(pairs: list[PairInput], pad_id: int, casing: bool, device: torch.device | str = "cpu") -> dict:
    """Pad pair inputs into one batch (training and inference)."""
    width = max(len(p.input_ids) for p in pairs)
    input_ids = torch.full((len(pairs), width), pad_id, dtype=torch.long)
    shapes = torch.zeros((len(pairs), width), dtype=torch.long)
    mask = torch.zeros((len(pairs), width), dtype=torch.long)
    for r, p in enumerate(pairs):
        input_ids[r, : len(p.input_ids)] = torch.tensor(p.input_ids)
        shapes[r, : len(p.shapes)] = torch.tensor(p.shapes)
        mask[r, : len(p.input_ids)] = 1
    batch = {
        "input_ids": input_ids.to(device),
        "attention_mask": mask.to(device),
        "head_index": torch.tensor([p.head_index for p in pairs], device=device),
        "tail_index": torch.tensor([p.tail_index for p in pairs], device=device),
    }
    if casing:
        batch["token_type_ids"] = shapes.to(device)
    return batch

