"""Evaluation through the inference path: entities, relations, calibration.

Predictions come from `NewsExtractor.extract_many` on raw text, sentence by sentence or on whole
articles. Entities: gold and predicted character spans become IOB2 tags of the corpus tokens,
scored with seqeval (strict), micro-averaged over mentions. Relations: Rel+ and Rel, end to end
and from gold entities. Calibration: ECE and risk-coverage of the scores against exact matches.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from inference.calibration import expected_calibration_error
from inference.extractor import NewsExtractor
from inference.ner import word_tags
from inference.relations import RelationTagger
from inference.schema import Article, Document, Entity, Relation, label_spans, sentence_documents
from inference.windows import tokenize


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, Any]:
    """Micro and per-type precision, recall, F1 and support from IOB2 tag sequences."""
    report = classification_report(gold, predicted, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    def row(r: dict[str, float]) -> dict[str, float]:
        return {"precision": r["precision"], "recall": r["recall"], "f1": r["f1-score"], "support": int(r["support"])}
    per_type = {k: row(v) for k, v in report.items() if not k.endswith(" avg")}
    return {"micro": row(report["micro avg"]), "per_type": per_type}


def tag_sequences(extractor: NewsExtractor, documents: list[Document], predictions: list[list[Entity]]) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and predicted IOB2 tags over each document's tokens (the tokenizer's words where it has none)."""
    fallback = tokenize(extractor.tagger.tokenizer, [d.text for d in documents if not d.tokens])
    gold, pred = [], []
    for doc, ents in zip(documents, predictions):
        words = doc.tokens or fallback.pop(0).words
        gold.append(word_tags(words, label_spans(doc.entities)))
        pred.append(word_tags(words, label_spans(ents)))
    return gold, pred


def evaluate_documents(
    extractor: NewsExtractor,
    documents: list[Document],
    batch_size: int = 32,
    calibration: bool = False,
    label_map: dict[str, str] | None = None,
    plot: Path | None = None,
) -> dict[str, Any]:
    """Entity (and relation) scores of the extractor on documents, each fed as one raw text;
    with `calibration`, also what its scores are worth: risk-coverage tables and the calibration
    error, calibrated and raw, and with `plot` their reliability diagram as a PNG. (Dev scoring
    during training needs only the F1.)

    `label_map` scores a model on a corpus with other labels (out of domain): predicted entity
    labels are renamed by it and those it lacks dropped, gold entities of labels outside its
    values dropped, relations left out.
    """
    texts = [d.text for d in documents]
    if label_map is not None:
        keep = set(label_map.values())
        documents = [replace(d, entities=[e for e in d.entities if e.label in keep], relations=[]) for d in documents]

    def extract() -> list[Article]:
        articles = extractor.extract_many(texts, batch_size=batch_size)
        if label_map is None:
            return articles
        return [
            Article(a.id, a.text, [replace(e, label=label_map[e.label]) for e in a.entities if e.label in label_map])
            for a in articles
        ]

    articles = extract()
    gold, pred = tag_sequences(extractor, documents, [a.entities for a in articles])
    result = {"ner": entity_scores(gold, pred)}
    with_relations = extractor.relation_tagger is not None and label_map is None
    symmetric = extractor.relation_tagger.schema.symmetric if with_relations else []
    if with_relations:
        result["relations"] = evaluate_relations(extractor, documents, articles)
    if calibration:
        outcomes = score_outcomes(documents, articles, symmetric)
        # Exact-match precision/recall by score threshold: what a user gets from min_score.
        gold_entities_total = sum(len(set(label_spans(d.entities))) for d in documents)
        result["ner"]["thresholds"] = risk_coverage(*outcomes["entities"], gold_entities_total)
        if with_relations:
            gold_relations_total = result["relations"]["strict"]["micro"]["support"]
            result["relations"]["thresholds"] = risk_coverage(*outcomes["relations"], gold_relations_total)
        fitted = extractor.calibration
        extractor.set_calibration({})
        raw = score_outcomes(documents, extract(), symmetric)
        extractor.set_calibration(fitted)
        result["calibration"] = {
            **calibration_errors(outcomes),
            "uncalibrated": calibration_errors(raw),
            "temperatures": {k: v for k, v in fitted.items() if k.endswith("temperature")},
            "isotonic": sorted(k for k in fitted if k.endswith("isotonic")),
        }
        if plot is not None:
            from .plots import reliability_diagram  # matplotlib only when a plot is asked for

            curves = {f"{kind}, {name}": o[kind] for name, o in (("raw", raw), ("calibrated", outcomes)) for kind in o if o[kind][0]}
            reliability_diagram(curves, plot, f"reliability, {len(documents)} documents")
    return result


def gold_entities(tagger: RelationTagger, documents: list[Document]) -> tuple[list[list[Entity]], list[list[Relation]]]:
    """The documents' gold entities and the relations the tagger finds among them."""
    entities = [
        [Entity(f"T{k + 1}", s.start, s.end, d.text[s.start : s.end], s.label, 1.0) for k, s in enumerate(d.entities)]
        for d in documents
    ]
    texts = [d.text for d in documents]
    return entities, tagger.predict(texts, tokenize(tagger.tokenizer, texts), entities)


def relation_keys(
    spans: list[tuple[int, int, str]], relations: list[tuple[int, int, str]], symmetric: list[str], strict: bool = True
) -> set:
    """Comparable keys of relations given as (head, tail, label) indices into `spans`; symmetric
    labels in a canonical order; entity types kept only when `strict`."""
    keys = set()
    for h, t, label in relations:
        head, tail = spans[h] if strict else spans[h][:2], spans[t] if strict else spans[t][:2]
        if label in symmetric and tail < head:
            head, tail = tail, head
        keys.add((head, tail, label))
    return keys


def gold_relation_keys(doc: Document, symmetric: list[str], strict: bool = True) -> set:
    """`relation_keys` of a document's gold relations."""
    return relation_keys(label_spans(doc.entities), [(r.head, r.tail, r.label) for r in doc.relations], symmetric, strict)


def predicted_relation_keys(entities: list[Entity], relations: list[Relation], symmetric: list[str], strict: bool = True) -> set:
    """`relation_keys` of predicted relations, whose heads and tails are entity ids."""
    index = {e.id: k for k, e in enumerate(entities)}
    return relation_keys(label_spans(entities), [(index[r.head], index[r.tail], r.label) for r in relations], symmetric, strict)


def relation_scores(
    documents: list[Document], entities: list[list[Entity]], relations: list[list[Relation]], symmetric: list[str]
) -> dict[str, Any]:
    """Strict (Rel+: spans, entity types and label exact) and boundaries (Rel: spans and label)
    micro and per-type precision/recall/F1 of predicted relations."""
    out = {}
    for mode in ("strict", "boundaries"):
        counts: dict[str, list[int]] = {}  # label -> [tp, fp, fn]
        for doc, ents, rels in zip(documents, entities, relations):
            gold = gold_relation_keys(doc, symmetric, mode == "strict")
            pred = predicted_relation_keys(ents, rels, symmetric, mode == "strict")
            for key in gold | pred:
                c = counts.setdefault(key[2], [0, 0, 0])
                c[0 if key in gold and key in pred else 1 if key in pred else 2] += 1
        out[mode] = {"micro": _prf(*[sum(c[i] for c in counts.values()) for i in range(3)]),
                     "per_type": {label: _prf(*c) for label, c in sorted(counts.items())}}
    return out


def _prf(tp: int, fp: int, fn: int) -> dict[str, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "support": tp + fn}


def score_outcomes(documents: list[Document], articles: list[Article], symmetric: list[str]) -> dict[str, tuple[list[float], list[bool]]]:
    """(scores, correct) of every extracted entity and relation; correct = exact match (Rel+)."""
    entity_scores, entity_ok, relation_scores, relation_ok = [], [], [], []
    for doc, art in zip(documents, articles):
        gold = set(label_spans(doc.entities))
        for e, span in zip(art.entities, label_spans(art.entities)):
            entity_scores.append(e.score)
            entity_ok.append(span in gold)
        gold_relations = gold_relation_keys(doc, symmetric)
        spans, index = label_spans(art.entities), {e.id: k for k, e in enumerate(art.entities)}
        for r in art.relations:
            relation_scores.append(r.score)
            relation_ok.append(relation_keys(spans, [(index[r.head], index[r.tail], r.label)], symmetric) <= gold_relations)
    return {"entities": (entity_scores, entity_ok), "relations": (relation_scores, relation_ok)}


def calibration_errors(outcomes: dict[str, tuple[list[float], list[bool]]]) -> dict[str, Any]:
    """ECE (15 bins) of entity and relation scores, from `score_outcomes`."""
    out = {"entity_ece": expected_calibration_error(*outcomes["entities"]), "entities": len(outcomes["entities"][0])}
    if outcomes["relations"][0]:
        out.update(relation_ece=expected_calibration_error(*outcomes["relations"]), relations=len(outcomes["relations"][0]))
    return out


def risk_coverage(scores: list[float], correct: list[bool], gold_total: int) -> list[dict[str, float]]:
    """Precision, recall, F1 and the share of predictions kept at score thresholds 0.1 .. 0.9."""
    rows = []
    for k in range(1, 10):
        kept = [ok for score, ok in zip(scores, correct) if score >= k / 10]
        p = sum(kept) / len(kept) if kept else 0.0
        r = sum(kept) / gold_total if gold_total else 0.0
        share = len(kept) / len(scores) if scores else 0.0
        rows.append({"threshold": k / 10, "precision": p, "recall": r, "f1": 2 * p * r / (p + r) if p + r else 0.0, "kept": share})
    return rows


def evaluate_relations(extractor: NewsExtractor, documents: list[Document], articles: list[Article]) -> dict[str, Any]:
    """Relations end to end (from predicted entities, as SpERT reports "with NER") and from gold entities."""
    symmetric = extractor.relation_tagger.schema.symmetric
    ents, rels = [a.entities for a in articles], [a.relations for a in articles]
    return {
        **relation_scores(documents, ents, rels, symmetric),
        "gold_entities": relation_scores(documents, *gold_entities(extractor.relation_tagger, documents), symmetric),
    }


def format_table(scores: dict[str, Any], title: str) -> str:
    """A per-type precision/recall/F1 table for the terminal."""
    lines = [title, f"{'type':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    rows = sorted(scores["per_type"].items()) + [("micro", scores["micro"])]
    for name, r in rows:
        lines.append(f"{name:<14}{r['precision']:>10.4f}{r['recall']:>10.4f}{r['f1']:>10.4f}{r['support']:>10}")
    return "\n".join(lines)


def format_thresholds(rows: list[dict[str, float]], what: str) -> str:
    """The risk-coverage table: exact-match precision, recall and share kept by score threshold."""
    lines = [f"{what} by score threshold", f"{'threshold':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'kept':>10}"]
    for r in rows:
        lines.append(f"{r['threshold']:<14}{r['precision']:>10.4f}{r['recall']:>10.4f}{r['f1']:>10.4f}{r['kept']:>10.2f}")
    return "\n".join(lines)


def format_report(result: dict[str, Any], where: str) -> str:
    """All tables of one level of `evaluate_run`: entities, relations (end to end and gold entities),
    thresholds, calibration."""
    parts = [format_table(result["ner"], f"entities, {where}"), format_thresholds(result["ner"]["thresholds"], "entities")]
    rel = result.get("relations")
    if rel:
        parts.append(format_table(rel["strict"], f"relations strict (Rel+), end to end, {where}"))
        parts.append(format_table(rel["boundaries"], f"relations boundaries (Rel), end to end, {where}"))
        parts.append(format_table(rel["gold_entities"]["strict"], f"relations strict from gold entities, {where}"))
        parts.append(format_thresholds(rel["thresholds"], "relations (strict, end to end)"))
    cal = result.get("calibration")
    if cal:
        line = f"calibration (ECE, 15 bins): entities {cal['entity_ece']:.4f} (raw {cal['uncalibrated']['entity_ece']:.4f})"
        if "relation_ece" in cal:
            line += f", relations {cal['relation_ece']:.4f} (raw {cal['uncalibrated']['relation_ece']:.4f})"
        parts.append(line + f", temperatures {cal['temperatures']}")
    return "\n\n".join(parts)


def git_commit() -> str:
    """HEAD of the working tree (+dirty if tracked files changed); $NEWS_EXTRACT_COMMIT where no .git travels."""
    if os.environ.get("NEWS_EXTRACT_COMMIT"):
        return os.environ["NEWS_EXTRACT_COMMIT"]
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+dirty" if dirty.strip() else "")


def cpu_name() -> str:
    """The processor's model name (Linux), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def provenance() -> dict[str, str]:
    """Commit, machine and date stamped into every metrics file."""
    commit = git_commit()
    if torch.cuda.is_available():
        machine = f"GPU {torch.cuda.get_device_name(0)}"
    else:
        machine = f"CPU {cpu_name()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads"
    return {"commit": commit, "machine": machine, "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def evaluate_run(
    model_dir: Path,
    data: Path,
    data_format: str,
    documents: list[Document],
    levels: list[str],
    batch_size: int = 32,
    label_map: dict[str, str] | None = None,
    plots: Path | None = None,
    backend: str = "torch",
    onnx_dir: Path | None = None,
) -> dict[str, Any]:
    """The metrics JSON of a run on a corpus: the first level at top level, others under `levels`;
    with `plots`, a reliability diagram per level in that folder; `backend` (and `onnx_dir`) as
    `NewsExtractor.from_pretrained` takes them."""
    extractor = NewsExtractor.from_pretrained(model_dir, backend=backend, onnx_dir=onnx_dir)
    results = {}
    for level in levels:
        docs = sentence_documents(documents) if level == "sentence" else documents
        plot = plots / f"reliability_{level}.png" if plots else None
        results[level] = evaluate_documents(extractor, docs, batch_size, calibration=True, label_map=label_map, plot=plot)
    first = levels[0]
    metrics = {
        **results[first],
        "level": first,
        "data": str(data),
        "format": data_format,
        "model": str(model_dir),
        "encoder": extractor.settings["encoder"],
        "backend": backend,
        "training": extractor.settings.get("training"),
        **({"label_map": label_map} if label_map else {}),
        **provenance(),
    }
    if len(levels) > 1:
        metrics["levels"] = results
    return metrics


def write_json(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
