"""Fit a run's calibration on annotated data (the dev split); see inference/calibration.py.

Temperatures: the NER model's word logits against the gold word tags, the relation
classifier's pair logits against the gold relations of gold-entity pairs. Isotonic maps: the
raw scores of what the extractor then returns, end to end, against exact-match correctness.
"""
from __future__ import annotations

from typing import Any

import torch

from inference.calibration import fit_isotonic, fit_temperature
from inference.extractor import NewsExtractor
from inference.ner import word_tags
from inference.schema import Document, label_spans
from inference.windows import tokenize

from .evaluate import score_outcomes
from .features import RelationCollator, relation_features


def fit_calibration(extractor: NewsExtractor, documents: list[Document]) -> dict[str, Any]:
    """Temperatures, then isotonic score maps, fitted on `documents`; the result is also applied."""
    result: dict[str, Any] = fit_temperatures(extractor, documents)
    extractor.set_calibration(result)
    articles = extractor.extract_many([d.text for d in documents])
    symmetric = extractor.relation_tagger.schema.symmetric if extractor.relation_tagger else []
    outcomes = score_outcomes(documents, articles, symmetric)
    result["entity_isotonic"] = fit_isotonic(*outcomes["entities"])
    if extractor.relation_tagger is not None:
        result["relation_isotonic"] = fit_isotonic(*outcomes["relations"])
    extractor.set_calibration(result)
    return result


def fit_temperatures(extractor: NewsExtractor, documents: list[Document]) -> dict[str, float]:
    """Temperatures for the extractor's models, fitted on `documents`."""
    tagger = extractor.tagger
    label2id = {v: k for k, v in tagger.id2label.items()}
    tokenized = tokenize(tagger.tokenizer, [d.text for d in documents])
    logits, labels = [], []
    for doc, toks, word_logits in zip(documents, tokenized, tagger.word_logits(tokenized)):
        tags = word_tags(toks.words, label_spans(doc.entities))
        logits.append(word_logits)
        labels.extend(label2id[t] for t in tags)
    result = {"ner_temperature": fit_temperature(torch.cat(logits), torch.tensor(labels))}
    rel = extractor.relation_tagger
    if rel is not None:
        features, _ = relation_features(rel.tokenizer, documents, rel.schema, None, seed=0)
        collate = RelationCollator(rel.tokenizer.pad_token_id, rel.casing)
        device = next(rel.model.parameters()).device
        rel.model.eval()
        logits, labels = [], []
        with torch.inference_mode():
            for b in range(0, len(features), 32):
                batch = collate(features[b : b + 32])
                labels.append(batch.pop("labels"))
                logits.append(rel.model(**{k: v.to(device) for k, v in batch.items()}).logits.float().cpu())
        result["relation_temperature"] = fit_temperature(torch.cat(logits), torch.cat(labels))
    return result
