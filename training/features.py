"""Gold documents -> model inputs for token classification.

Windows come from `inference.windows`, the code inference runs, so that what the model is
trained on and what it sees at run time are cut and labelled the same way.
"""
from __future__ import annotations

from transformers import PreTrainedTokenizerFast

from inference.ner import word_tags
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
