"""Evaluation through the inference path: entities, relations, calibration.

Predictions come from `NewsExtractor.extract_many` on raw text, sentence by sentence or on whole
articles. Entities: gold and predicted character spans become IOB2 tags of the corpus tokens,
scored with seqeval (strict), micro-averaged over mentions. Relations: Rel+ and Rel, end to end
and from gold entities. Calibration: ECE and risk-coverage of the scores against exact matches.
Every comparison of a prediction with the gold reads spans the same way (`scored_spans`): on
the corpus tokens where the corpus has them, as seqeval and SpERT do, else on characters.
"""
from __future__ import annotations

import copy
import datetime
import json
import os
import platform
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from inference.calibration import ece_noise, expected_calibration_error
from inference.extractor import NewsExtractor, keep_confident
from inference.ner import span_words, word_tags
from inference.relations import RelationTagger
from inference.schema import Article, Document, Entity, Relation, Span, label_spans, sentence_documents
from inference.windows import tokenize


def entity_scores(gold: list[list[str]], predicted: list[list[str]]) -> dict[str, Any]:
    """Micro and per-type precision, recall, F1 and support from IOB2 tag sequences."""
    report = classification_report(gold, predicted, mode="strict", scheme=IOB2, output_dict=True, zero_division=0)
    def row(r: dict[str, float]) -> dict[str, float]:
        return {"precision": r["precision"], "recall": r["recall"], "f1": r["f1-score"], "support": int(r["support"])}
    per_type = {k: row(v) for k, v in report.items() if not k.endswith(" avg")}
    return {"micro": row(report["micro avg"]), "per_type": per_type}


def scored_spans(doc: Document, mentions: list[Span] | list[Entity]) -> list[tuple[int, int, str]]:
    """(start, end, label) of gold or predicted mentions as they are compared: [first, last + 1)
    of the corpus tokens each covers where the document has tokens (`span_words`, the tokens its
    IOB2 tags sit on: a prediction "Texas" covers the corpus token "Texas.", as in the entity F1
    and in SpERT's token spans), else its characters."""
    if not doc.tokens:
        return label_spans(mentions)
    starts = [s for s, _ in doc.tokens]
    spans = []
    for m in mentions:
        covered = span_words(doc.tokens, starts, m.start, m.end)
        # A mention covering no token (only whitespace) matches nothing: -1 is no token's index.
        spans.append((covered.start, covered.stop, m.label) if covered else (-1, -1, m.label))
    return spans


def tag_sequences(extractor: NewsExtractor, documents: list[Document], predictions: list[list[Entity]]) -> tuple[list[list[str]], list[list[str]]]:
    """Gold and predicted IOB2 tags over each document's tokens (the tokenizer's words where it has none)."""
    fallback = tokenize(extractor.tagger.tokenizer, [d.text for d in documents if not d.tokens])
    gold, pred = [], []
    for doc, ents in zip(documents, predictions):
        words = doc.tokens or fallback.pop(0).words
        gold.append(word_tags(words, label_spans(doc.entities)))
        pred.append(word_tags(words, label_spans(ents)))
    return gold, pred


@dataclass
class Evaluation:
    """The metrics of one evaluation and what they were computed from (for plots and the report)."""

    metrics: dict[str, Any]
    documents: list[Document]  # as scored (label_map applied)
    articles: list[Article]
    outcomes: dict[str, Outcomes] = field(default_factory=dict)  # calibrated scores
    raw_outcomes: dict[str, Outcomes] = field(default_factory=dict)
    symmetric: list[str] = field(default_factory=list)


def evaluate_documents(
    extractor: NewsExtractor,
    documents: list[Document],
    batch_size: int = 32,
    calibration: bool = False,
    label_map: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The metrics of `evaluate` (dev scoring during training needs only these)."""
    return evaluate(extractor, documents, batch_size, calibration, label_map).metrics


def evaluate(
    extractor: NewsExtractor,
    documents: list[Document],
    batch_size: int = 32,
    calibration: bool = False,
    label_map: dict[str, str] | None = None,
) -> Evaluation:
    """Entity (and relation) scores of the extractor on documents, each fed as one raw text;
    with `calibration`, also what its scores are worth (risk-coverage tables and the calibration
    error, calibrated and raw) and the entity-type confusion matrix.

    `label_map` scores a model on a corpus with other labels (out of domain): predicted entity
    labels are renamed by it and those it lacks dropped, gold entities of labels outside its
    values dropped, relations left out.
    """
    texts = [d.text for d in documents]
    if label_map is not None:
        keep = set(label_map.values())
        documents = [replace(d, entities=[e for e in d.entities if e.label in keep], relations=[]) for d in documents]

    def extract() -> tuple[list[Article], list[Article]]:
        """Everything the extractor finds (for the score tables) and what it returns by default
        (its decision floors applied: the F1 tables)."""
        everything = extractor.extract_many(texts, batch_size=batch_size, min_score=0.0)
        floor = extractor.score_floor(None)
        default = everything if floor is None else [keep_confident(copy.deepcopy(a), floor, keep_related=True) for a in everything]
        if label_map is None:
            return everything, default
        return tuple(
            [Article(a.id, a.text, [replace(e, label=label_map[e.label]) for e in a.entities if e.label in label_map]) for a in arts]
            for arts in (everything, default)
        )

    everything, articles = extract()
    gold, pred = tag_sequences(extractor, documents, [a.entities for a in articles])
    result = {"ner": entity_scores(gold, pred)}
    with_relations = extractor.relation_tagger is not None and label_map is None
    symmetric = extractor.relation_tagger.schema.symmetric if with_relations else []
    if with_relations:
        result["relations"] = evaluate_relations(extractor, documents, articles)
    evaluation = Evaluation(result, documents, articles, symmetric=symmetric)
    if calibration:
        result["ner"]["confusion"] = type_confusion(documents, articles)
        outcomes = score_outcomes(documents, everything, symmetric)
        gold_counts = gold_label_counts(documents, symmetric)
        # Exact-match precision/recall by score threshold: what a user gets from min_score.
        result["ner"]["thresholds"] = risk_coverage(outcomes["entities"], sum(gold_counts["entities"].values()))
        if with_relations:
            result["relations"]["thresholds"] = risk_coverage(outcomes["relations"], sum(gold_counts["relations"].values()))
        fitted = extractor.calibration
        extractor.set_calibration({})
        raw = score_outcomes(documents, extract()[0], symmetric)
        extractor.set_calibration(fitted)
        result["calibration"] = {
            **calibration_errors(outcomes),
            "uncalibrated": calibration_errors(raw),
            "temperatures": {k: v for k, v in fitted.items() if k.endswith("temperature")},
            "maps": sorted(k for k in fitted if k.endswith("platt")),
            "decision": fitted.get("decision"),
        }
        if fitted.get("thresholds") and label_map is None:
            floor = extractor.score_floor("run")
            result["calibration"]["run_thresholds"] = {
                kind: kept_by_floor(outcomes[kind], floor, gold_counts[kind]) for kind in ("entities", "relations") if outcomes[kind].scores
            }
        evaluation.outcomes, evaluation.raw_outcomes = outcomes, raw
    return evaluation


MISSED, SPURIOUS = "(missed)", "(spurious)"


def type_confusion(documents: list[Document], articles: list[Article]) -> dict[str, dict[str, int]]:
    """Gold type -> predicted type -> count over spans whose boundaries match exactly; a gold span
    no prediction matches counts under MISSED, a prediction matching no gold span as SPURIOUS."""
    counts: dict[str, dict[str, int]] = {}

    def add(gold: str, predicted: str) -> None:
        row = counts.setdefault(gold, {})
        row[predicted] = row.get(predicted, 0) + 1

    for doc, article in zip(documents, articles):
        gold = {(s, e): label for s, e, label in scored_spans(doc, doc.entities)}
        predicted = {(s, e): label for s, e, label in scored_spans(doc, article.entities)}
        for span, label in gold.items():
            add(label, predicted.get(span, MISSED))
        for span, label in predicted.items():
            if span not in gold:
                add(SPURIOUS, label)
    return counts


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
    return relation_keys(scored_spans(doc, doc.entities), [(r.head, r.tail, r.label) for r in doc.relations], symmetric, strict)


def predicted_relation_keys(
    doc: Document, entities: list[Entity], relations: list[Relation], symmetric: list[str], strict: bool = True
) -> set:
    """`relation_keys` of the relations predicted for `doc`, whose heads and tails are entity ids."""
    index = {e.id: k for k, e in enumerate(entities)}
    return relation_keys(scored_spans(doc, entities), [(index[r.head], index[r.tail], r.label) for r in relations], symmetric, strict)


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
            pred = predicted_relation_keys(doc, ents, rels, symmetric, mode == "strict")
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


@dataclass
class Outcomes:
    """Score, label and exact-match correctness of every extraction of one kind (entities or relations)."""

    scores: list[float] = field(default_factory=list)
    correct: list[bool] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)

    def add(self, score: float, correct: bool, label: str) -> None:
        self.scores.append(score)
        self.correct.append(correct)
        self.labels.append(label)


def score_outcomes(documents: list[Document], articles: list[Article], symmetric: list[str]) -> dict[str, Outcomes]:
    """The outcomes of every extracted entity and relation; correct = exact match (Rel+ for relations)."""
    entities, relations = Outcomes(), Outcomes()
    for doc, art in zip(documents, articles):
        gold = set(scored_spans(doc, doc.entities))
        for e, span in zip(art.entities, scored_spans(doc, art.entities)):
            entities.add(e.score, span in gold, e.label)
        gold_relations = gold_relation_keys(doc, symmetric)
        spans, index = scored_spans(doc, art.entities), {e.id: k for k, e in enumerate(art.entities)}
        for r in art.relations:
            ok = relation_keys(spans, [(index[r.head], index[r.tail], r.label)], symmetric) <= gold_relations
            relations.add(r.score, ok, r.label)
    return {"entities": entities, "relations": relations}


def gold_label_counts(documents: list[Document], symmetric: list[str]) -> dict[str, dict[str, int]]:
    """How many gold entities and relations (distinct, as scored) each label has."""
    counts: dict[str, dict[str, int]] = {"entities": {}, "relations": {}}
    for doc in documents:
        for _, _, label in set(scored_spans(doc, doc.entities)):
            counts["entities"][label] = counts["entities"].get(label, 0) + 1
        for key in gold_relation_keys(doc, symmetric):
            counts["relations"][key[2]] = counts["relations"].get(key[2], 0) + 1
    return counts


def calibration_errors(outcomes: dict[str, Outcomes]) -> dict[str, Any]:
    """ECE (15 bins) of entity and relation scores, from `score_outcomes`, each beside its
    sampling floor (the ECE a perfectly calibrated scorer would show on as many extractions) and
    p, the share of such a scorer's draws with an ECE at least as large (inference.calibration.ece_noise)."""
    out: dict[str, Any] = {}
    for kind, name in (("entities", "entity"), ("relations", "relation")):
        o = outcomes[kind]
        if kind == "entities" or o.scores:
            ece = expected_calibration_error(o.scores, o.correct)
            noise = ece_noise(o.scores, ece)
            out.update({f"{name}_ece": ece, kind: len(o.scores), f"{name}_ece_floor": noise["floor"], f"{name}_ece_p": noise["p"]})
    return out


def kept_by_floor(outcomes: Outcomes, floor: Callable[[str], float], gold: dict[str, int]) -> dict[str, Any]:
    """Exact-match precision and recall of what per-label score floors keep, overall and per label."""
    def row(labels: set[str]) -> dict[str, float]:
        kept = [ok for s, ok, lab in zip(outcomes.scores, outcomes.correct, outcomes.labels) if lab in labels and s >= floor(lab)]
        support = sum(gold.get(lab, 0) for lab in labels)
        return {"precision": sum(kept) / len(kept) if kept else 0.0, "recall": sum(kept) / support if support else 0.0,
                "kept": len(kept)}

    labels = set(outcomes.labels) | set(gold)
    return {"micro": row(labels), "per_type": {lab: row({lab}) for lab in sorted(labels)}}


def risk_coverage(outcomes: Outcomes, gold_total: int) -> list[dict[str, float]]:
    """Precision, recall, F1 and the share of predictions kept at score thresholds 0.1 .. 0.9."""
    scores, rows = outcomes.scores, []
    for k in range(1, 10):
        kept = [ok for score, ok in zip(scores, outcomes.correct) if score >= k / 10]
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
        line = (f"calibration (ECE, 15 bins; floor = a perfectly calibrated scorer's on as many, p = the share of its draws "
                f"with an ECE as large): entities {cal['entity_ece']:.4f} (raw {cal['uncalibrated']['entity_ece']:.4f}, "
                f"floor {cal['entity_ece_floor']:.4f}, p {cal['entity_ece_p']:.2f})")
        if "relation_ece" in cal:
            line += (f", relations {cal['relation_ece']:.4f} (raw {cal['uncalibrated']['relation_ece']:.4f}, "
                     f"floor {cal['relation_ece_floor']:.4f}, p {cal['relation_ece_p']:.2f})")
        parts.append(line + f", temperatures {cal['temperatures']}")
        if cal.get("decision"):
            floors = ", ".join(f"{kind} {d['min_score']:.2f}" for kind, d in cal["decision"].items())
            parts.append(f"the tables above are the default output: decision floors chosen on dev for F1 ({floors}); "
                         "the threshold tables and calibration errors count everything found (min_score=0)")
        for kind, kept in cal.get("run_thresholds", {}).items():
            parts.append(f"{kind} kept by the run's per-type thresholds (min_score=\"run\"): "
                         f"precision {kept['micro']['precision']:.4f}, recall {kept['micro']['recall']:.4f}")
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
    report: Path | None = None,
    backend: str = "torch",
    onnx_dir: Path | None = None,
) -> dict[str, Any]:
    """The metrics JSON of a run on a corpus: the first level at top level, others under `levels`;
    with `plots`, a reliability diagram per level in that folder; with `report`, an HTML and
    markdown report per level (training.report) in that one; `backend` (and `onnx_dir`) as
    `NewsExtractor.from_pretrained` takes them."""
    extractor = NewsExtractor.from_pretrained(model_dir, backend=backend, onnx_dir=onnx_dir)
    if label_map is None:
        known = set(extractor.entity_labels)
        for doc in documents:
            unknown = sorted({e.label for e in doc.entities} - known)
            if unknown:
                raise ValueError(
                    f"{data}: document {doc.id!r} has the entity type {unknown[0]!r}, unknown to the run {model_dir} "
                    f"({', '.join(sorted(known))}); score it with --label-map FROM=TO,..."
                )
    results, evaluations = {}, {}
    for level in levels:
        docs = sentence_documents(documents) if level == "sentence" else documents
        evaluations[level] = evaluate(extractor, docs, batch_size, calibration=True, label_map=label_map)
        results[level] = evaluations[level].metrics
        if plots is not None:
            from .plots import reliability_diagram  # matplotlib only when a plot is asked for

            reliability_diagram(reliability_curves(evaluations[level]), plots / f"reliability_{level}.png",
                                f"reliability, {len(docs)} documents")
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
    if report is not None:
        from .report import write_report  # matplotlib only when a report is asked for

        for level, evaluation in evaluations.items():
            write_report(report, level, evaluation, {k: metrics[k] for k in ("model", "data", "encoder", "commit", "machine", "date")})
    return metrics


def reliability_curves(evaluation: Evaluation) -> dict[str, tuple[list[float], list[bool]]]:
    """(scores, correct) of entities and relations, raw and calibrated, for the reliability diagram."""
    pairs = (("raw", evaluation.raw_outcomes), ("calibrated", evaluation.outcomes))
    return {f"{kind}, {name}": (o[kind].scores, o[kind].correct) for name, o in pairs for kind in o if o[kind].scores}


def write_json(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
