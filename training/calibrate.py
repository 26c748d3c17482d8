"""Fit a run's calibration on annotated data (the dev split); see inference/calibration.py.

Temperatures: the NER model's word logits against the gold word tags, the relation
classifier's pair logits against the gold relations of gold-entity pairs. Score maps, fitted on
what the extractor then returns, end to end, against exact-match correctness: entities, a Platt
map of the raw score per known/new name; relations, a logistic map of the label probability and
the calibrated entity scores (inference.calibration). Per-type thresholds: for each label, the
least calibrated score whose extractions reach the target precision on the same documents.
"""
from __future__ import annotations

import copy
from typing import Any

import torch

from inference.calibration import fit_grouped_platt, fit_logistic, fit_temperature, relation_logits
from inference.extractor import NewsExtractor
from inference.ner import word_tags
from inference.schema import Article, Document, label_spans
from inference.windows import tokenize

from .evaluate import Outcomes, gold_label_counts, score_outcomes
from .features import RelationCollator, relation_features


def fit_calibration(extractor: NewsExtractor, documents: list[Document], target_precision: float) -> dict[str, Any]:
    """Temperatures, score maps and per-type thresholds fitted on `documents` (the extractor's
    `known_mentions` must be set); the result is also applied."""
    result: dict[str, Any] = fit_temperatures(extractor, documents)
    extractor.set_calibration(result)
    symmetric = extractor.relation_tagger.schema.symmetric if extractor.relation_tagger else []
    predicted = extractor.predict_articles([d.text for d in documents])
    correct = {kind: o.correct for kind, o in score_outcomes(documents, predicted, symmetric).items()}
    entities = [e for a in predicted for e in a.entities]
    groups = [extractor.mention_group(e.text, e.label) for e in entities]
    result["entity_platt"] = fit_grouped_platt([e.score for e in entities], correct["entities"], groups)
    extractor.set_calibration(result)  # the relation map reads the entities' calibrated scores
    if extractor.relation_tagger is not None:
        result["relation_map"] = fit_logistic(relation_map_inputs(extractor, predicted), correct["relations"])
        extractor.set_calibration(result)
    calibrated = score_outcomes(documents, [extractor.score(copy.deepcopy(a)) for a in predicted], symmetric)
    gold = gold_label_counts(documents, symmetric)
    result["thresholds"] = {
        "target_precision": target_precision,
        **{kind: fit_thresholds(calibrated[kind], gold[kind], target_precision) for kind in ("entities", "relations")},
    }
    kinds = ("entities", "relations") if extractor.relation_tagger is not None else ("entities",)  # no relation floor without relations
    result["decision"] = {kind: fit_decision_floor(calibrated[kind], sum(gold[kind].values())) for kind in kinds}
    extractor.set_calibration(result)
    return result


def relation_map_inputs(extractor: NewsExtractor, articles: list[Article]) -> list[list[float]]:
    """`relation_logits` of every relation of `articles` (from `predict_articles`, left as they
    are), its entities scored through the extractor's current entity maps."""
    inputs = []
    for article in articles:
        scores = {e.id: e.score for e in extractor.score(copy.deepcopy(article)).entities}
        inputs += [relation_logits(r.score, scores[r.head], scores[r.tail]) for r in article.relations]
    return inputs


DECISION_GRID = [k / 20 for k in range(20)]  # 0, 0.05, ..., 0.95: coarse, so a few hundred dev relations can choose


def fit_decision_floor(outcomes: Outcomes, gold: int) -> dict[str, float]:
    """The calibrated-score floor (on DECISION_GRID) under which extractions are left out by
    default: the one of best micro F1 on these documents, the lowest among equals; with the F1
    it gave and the F1 of keeping everything."""
    def f1(floor: float) -> float:
        kept = [ok for s, ok in zip(outcomes.scores, outcomes.correct) if s >= floor]
        right = sum(kept)
        return 2 * right / (len(kept) + gold) if kept or gold else 0.0

    best = max(DECISION_GRID, key=lambda floor: (f1(floor), -floor))
    return {"min_score": best, "f1": f1(best), "f1_keeping_all": f1(0.0)}


def fit_thresholds(outcomes: Outcomes, gold: dict[str, int], target: float) -> dict[str, dict[str, Any]]:
    """Per label, the least score whose extractions (those scoring at least it) reach `target`
    precision, with the precision, recall and share kept it gave; where no score reaches the
    target, the score of highest precision (`reached` false)."""
    out = {}
    for label in sorted(set(outcomes.labels)):
        ranked = sorted(
            ((s, ok) for s, ok, lab in zip(outcomes.scores, outcomes.correct, outcomes.labels) if lab == label), reverse=True
        )
        rows, right = [], 0
        for k, (score, ok) in enumerate(ranked):
            right += ok
            if k + 1 < len(ranked) and ranked[k + 1][0] == score:
                continue  # a threshold keeps every extraction of its score
            rows.append({"min_score": score, "precision": right / (k + 1), "recall": right / gold[label] if gold.get(label) else 0.0,
                         "kept": (k + 1) / len(ranked)})
        reached = [r for r in rows if r["precision"] >= target]
        best = reached[-1] if reached else max(rows, key=lambda r: (r["precision"], -r["min_score"]))
        out[label] = {**best, "reached": bool(reached)}
    return out


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
