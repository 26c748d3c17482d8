"""Gold documents -> model inputs: token-classification windows and relation pair inputs.

Windows come from `inference.windows` and pair inputs from `inference.relations`, the code
inference runs, so that what the models are trained on and what they see at run time are cut,
marked and labelled the same way.
"""
from __future__ import annotations

import math
import random
from typing import Any

import torch
from transformers import PreTrainedTokenizerFast

from inference.ner import word_tags
from inference.relations import PairInput, RelationSchema, collate_pairs, marker_ids, pair_inputs
from inference.schema import Document
from inference.windows import WindowSpec, make_windows, tokenize, window_inputs

IGNORE = -100  # label of tokens the loss skips (special tokens, non-first subwords)


def ner_features(
    tokenizer: PreTrainedTokenizerFast,
    documents: list[Document],
    spec: WindowSpec,
    label2id: dict[str, int],
    casing: bool,
) -> list[dict[str, list[int]]]:
    """One feature per window (input_ids, labels, and word shapes as token_type_ids where `casing`).

    Only the first subword of a word carries its tag.
    """
    features = []
    for doc, toks in zip(documents, tokenize(tokenizer, [d.text for d in documents])):
        tags = word_tags(toks.words, [(e.start, e.end, e.label) for e in doc.entities])
        unknown = {t.split("-", 1)[1] for t in tags if t not in label2id}
        if unknown:
            raise ValueError(f"document {doc.id!r}: entity types {sorted(unknown)} are not in the label set")
        starts = set(toks.word_starts())
        for w in make_windows(toks, spec):
            labels = [IGNORE]
            labels += [label2id[tags[toks.word_ids[t]]] if t in starts else IGNORE for t in range(w.start, w.end)]
            labels.append(IGNORE)
            ids, shapes = window_inputs(tokenizer, toks, w)
            features.append({"input_ids": ids, "labels": labels, **({"token_type_ids": shapes} if casing else {})})
    return features


def relation_features(
    tokenizer: PreTrainedTokenizerFast,
    documents: list[Document],
    schema: RelationSchema,
    negative_ratio: float | None,
    seed: int,
) -> tuple[list[dict[str, Any]], int]:
    """One feature per candidate pair of gold entities, labelled with its gold relation or none.

    Unrelated pairs are sampled (`negative_ratio` per related pair of the document, all if None).
    Also returns how many gold relations no candidate pair carries (other sentence, excluded
    type pair, too long to encode), so that training can say what it cannot learn.
    """
    markers = marker_ids(tokenizer, schema)
    label_id = {label: k + 1 for k, label in enumerate(schema.labels)}
    rng = random.Random(seed)
    features, unreachable = [], 0
    for doc, toks in zip(documents, tokenize(tokenizer, [d.text for d in documents])):
        gold = {}
        for r in doc.relations:
            gold[(r.head, r.tail)] = r.label
            if r.label in schema.symmetric:
                gold.setdefault((r.tail, r.head), r.label)
        spans = [(e.start, e.end, e.label) for e in doc.entities]
        pairs = pair_inputs(tokenizer, toks, doc.text, spans, schema, markers)
        reached = {p for p, _ in pairs}
        unreachable += sum(1 for r in doc.relations if (r.head, r.tail) not in reached)
        positives = [(p, x) for p, x in pairs if p in gold]
        negatives = [(p, x) for p, x in pairs if p not in gold]
        if negative_ratio is not None:
            keep = min(len(negatives), math.ceil(negative_ratio * max(1, len(positives))))
            negatives = rng.sample(negatives, keep)
        for p, x in positives + negatives:
            features.append(
                {
                    "input_ids": x.input_ids,
                    "shapes": x.shapes,
                    "head_index": x.head_index,
                    "tail_index": x.tail_index,
                    "labels": label_id[gold[p]] if p in gold else 0,
                }
            )
    return features, unreachable


class RelationCollator:
    """Pads relation features into a batch (the same padding as inference)."""

    def __init__(self, pad_id: int, casing: bool) -> None:
        self.pad_id = pad_id
        self.casing = casing

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        pairs = [PairInput(r["input_ids"], r["shapes"], r["head_index"], r["tail_index"]) for r in rows]
        batch = collate_pairs(pairs, self.pad_id, self.casing)
        batch["labels"] = torch.tensor([r["labels"] for r in rows])
        return batch
