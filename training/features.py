"""Gold documents -> model inputs: token-classification windows and relation segments.

Windows come from `inference.windows` and segments from `inference.relations`, the code
inference runs, so that what the models are trained on and what they see at run time are cut,
marked and labelled the same way.
"""
from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import torch
from transformers import PreTrainedTokenizerFast

from inference.ner import word_tags
from inference.relations import (
    RelationSchema,
    Segment,
    collate_segments,
    marker_ids,
    pair_positions,
    pairs_by_segment,
    relation_inputs,
)
from inference.schema import Document, label_spans
from inference.windows import WindowSpec, make_windows, tokenize, window_inputs

IGNORE = -100  # label of tokens the loss skips (special tokens, non-first subwords)


def ner_features(
    tokenizer: PreTrainedTokenizerFast,
    documents: list[Document],
    spec: WindowSpec,
    label2id: dict[str, int],
    casing: bool,
    teacher: list[np.ndarray] | None = None,
    gold: bool = True,
) -> list[dict[str, list]]:
    """One feature per window (input_ids, labels, and word shapes as token_type_ids where `casing`).

    Only the first subword of a word carries its tag. `teacher`: per document, (words x labels)
    tag distributions of a teacher model (training/distill.py), added as a `teacher` row per
    token (zeros where none). `gold=False`: unannotated texts, no tag is learned from them.
    """
    features = []
    for d, (doc, toks) in enumerate(zip(documents, tokenize(tokenizer, [d.text for d in documents]))):
        tags = word_tags(toks.words, label_spans(doc.entities)) if gold else ["O"] * len(toks.words)
        unknown = {t.split("-", 1)[1] for t in tags if t not in label2id}
        if unknown:
            raise ValueError(f"document {doc.id!r}: entity types {sorted(unknown)} are not in the label set")
        starts = set(toks.word_starts())
        for w in make_windows(toks, spec):
            labels = [IGNORE]
            labels += [label2id[tags[toks.word_ids[t]]] if gold and t in starts else IGNORE for t in range(w.start, w.end)]
            labels.append(IGNORE)
            ids, shapes = window_inputs(tokenizer, toks, w)
            feature = {"input_ids": ids, "labels": labels, **({"token_type_ids": shapes} if casing else {})}
            if teacher is not None:
                none = [0.0] * len(label2id)
                rows = [teacher[d][toks.word_ids[t]].tolist() if t in starts else none for t in range(w.start, w.end)]
                feature["teacher"] = [none, *rows, none]
            features.append(feature)
    return features


def relation_features(
    tokenizer: PreTrainedTokenizerFast,
    documents: list[Document],
    schema: RelationSchema,
    negative_ratio: float | None,
    seed: int,
) -> tuple[list[dict[str, Any]], int]:
    """One feature per segment: its marked tokens and its candidate pairs of gold entities, each
    labelled with its gold relation or none (0).

    Unrelated pairs are sampled (`negative_ratio` per related pair of the document, all if None).
    Also returns how many gold relations no candidate pair carries (other sentence, excluded
    type pair, too far apart), so that training can say what it cannot learn.
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
        spans = label_spans(doc.entities)
        segments, pairs = relation_inputs(tokenizer, toks, doc.text, spans, schema, markers)
        reached = {(h, t) for h, t, _ in pairs}
        unreachable += sum(1 for r in doc.relations if (r.head, r.tail) not in reached)
        positives = [p for p in pairs if p[:2] in gold]
        negatives = [p for p in pairs if p[:2] not in gold]
        if negative_ratio is not None:
            keep = min(len(negatives), math.ceil(negative_ratio * max(1, len(positives))))
            negatives = rng.sample(negatives, keep)
        for k, mine in sorted(pairs_by_segment(positives + negatives).items()):
            segment = segments[k]
            features.append(
                {
                    "input_ids": segment.input_ids,
                    "shapes": segment.shapes,
                    "positions": [pair_positions(segment, h, t) for h, t in mine],
                    "labels": [label_id.get(gold.get(p), 0) for p in mine],
                }
            )
    return features, unreachable


class RelationCollator:
    """Pads segment features into a batch, their pairs flattened (the same padding as inference)."""

    def __init__(self, pad_id: int, casing: bool) -> None:
        self.pad_id = pad_id
        self.casing = casing

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        segments, pairs, labels = [], [], []
        for r, row in enumerate(rows):
            segments.append(Segment(row["input_ids"], row["shapes"]))
            pairs.extend((r, *p) for p in row["positions"])
            labels.extend(row["labels"])
        batch = collate_segments(segments, pairs, self.pad_id, self.casing)
        batch["labels"] = torch.tensor(labels)
        return batch
