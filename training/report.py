"""`evaluate --report DIR`: the evaluation of one level as an HTML page and a markdown file.

Both hold the same tables (per-type scores, entity-type confusion matrix, precision and recall
by threshold, calibration) and plots (F1 per type, reliability diagram, threshold curves); a
third page shows every document with its gold and predicted entities and relations marked right
(tp), wrong (fp) or missed (fn), as SpERT's example pages do, drawn by inference.render. All
figures come from `training.evaluate`; nothing is scored here.
"""
from __future__ import annotations

import base64
import html
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inference.render import Arc, Mark, View, colours, page, render_view
from inference.schema import Article, Document

from .evaluate import MISSED, SPURIOUS, Evaluation, relation_keys, reliability_curves, scored_spans
from .plots import f1_bars, reliability_diagram, threshold_curves

MAX_EXAMPLES = 1000  # documents on the examples page


@dataclass
class Table:
    """A titled table of already formatted cells, written as markdown or HTML."""

    title: str
    columns: list[str]
    rows: list[list[str]]

    def markdown(self) -> str:
        lines = [f"### {self.title}", "", "| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)

    def html(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in self.rows)
        return f'<h3>{html.escape(self.title)}</h3><table class="scores"><tr>{head}</tr>{body}</table>'


def score_table(scores: dict[str, Any], title: str) -> Table:
    """Per-type precision, recall, F1 and support, then the micro average."""
    rows = sorted(scores["per_type"].items()) + [("micro", scores["micro"])]
    return Table(title, ["type", "precision", "recall", "F1", "support"],
                 [[name, f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", str(r["support"])] for name, r in rows])


def threshold_table(rows: list[dict[str, float]], title: str) -> Table:
    """Exact-match precision, recall, F1 and share kept by score threshold."""
    return Table(title, ["min_score", "precision", "recall", "F1", "kept"],
                 [[f"{r['threshold']:.1f}", f"{r['precision']:.3f}", f"{r['recall']:.3f}", f"{r['f1']:.3f}", f"{r['kept']:.2f}"]
                  for r in rows])


def confusion_table(confusion: dict[str, dict[str, int]]) -> Table:
    """Gold type (rows) against predicted type (columns) over spans with matching boundaries."""
    types = sorted({t for t in confusion if t != SPURIOUS} | {t for row in confusion.values() for t in row if t != MISSED})
    rows = []
    for gold in types + [SPURIOUS]:
        counts = confusion.get(gold, {})
        rows.append([gold] + [str(counts.get(p, 0)) if gold != SPURIOUS or p != MISSED else "" for p in types + [MISSED]])
    return Table("entity types: gold (rows) against predicted (columns), spans with matching boundaries",
                 ["gold \\ predicted"] + types + [MISSED], rows)


def tables(metrics: dict[str, Any]) -> list[Table]:
    """Every table of the report, from the metrics of `training.evaluate`."""
    out = [score_table(metrics["ner"], "entities (strict: boundaries and type)"), confusion_table(metrics["ner"]["confusion"])]
    rel = metrics.get("relations")
    if rel:
        out += [score_table(rel["strict"], "relations Rel+ end to end (spans, entity types, label)"),
                score_table(rel["boundaries"], "relations Rel end to end (spans, label)"),
                score_table(rel["gold_entities"]["strict"], "relations Rel+ from gold entities")]
    out.append(threshold_table(metrics["ner"]["thresholds"], "entities by score threshold"))
    if rel:
        out.append(threshold_table(rel["thresholds"], "relations (Rel+) by score threshold"))
    cal = metrics["calibration"]
    kinds = [(k, plural) for k, plural in (("entity", "entities"), ("relation", "relations")) if f"{k}_ece" in cal]
    out.append(Table("calibration: expected calibration error (15 bins)", ["scores", "calibrated", "raw", "count"],
                     [[plural, f"{cal[f'{k}_ece']:.4f}", f"{cal['uncalibrated'][f'{k}_ece']:.4f}", str(cal[plural])]
                      for k, plural in kinds]))
    return out


def example_views(doc: Document, article: Article, symmetric: list[str]) -> tuple[View, View, int]:
    """The gold view (tp/fn) and the predicted view (tp/fp) of one document, and its error count."""
    gold_spans, pred_spans = scored_spans(doc, doc.entities), scored_spans(doc, article.entities)  # as compared
    index = {e.id: k for k, e in enumerate(article.entities)}
    gold_keys = [relation_keys(gold_spans, [(r.head, r.tail, r.label)], symmetric) for r in doc.relations]
    pred_keys = [relation_keys(pred_spans, [(index[r.head], index[r.tail], r.label)], symmetric) for r in article.relations]
    all_gold, all_pred = set().union(*gold_keys), set().union(*pred_keys)
    gold = View("gold", doc.text,
                [Mark(f"G{k}", g.start, g.end, g.label, status="tp" if span in pred_spans else "fn") for k, (g, span) in enumerate(zip(doc.entities, gold_spans))],
                [Arc(f"G{r.head}", f"G{r.tail}", r.label, status="tp" if key <= all_pred else "fn") for r, key in zip(doc.relations, gold_keys)])
    pred = View("predicted", doc.text,
                [Mark(e.id, e.start, e.end, e.label, e.score, "tp" if span in gold_spans else "fp") for e, span in zip(article.entities, pred_spans)],
                [Arc(r.head, r.tail, r.label, r.score, "tp" if key <= all_gold else "fp") for r, key in zip(article.relations, pred_keys)])
    errors = sum(m.status != "tp" for m in gold.marks + pred.marks) + sum(a.status != "tp" for a in gold.arcs + pred.arcs)
    return gold, pred, errors


def examples_page(evaluation: Evaluation, labels: list[str], title: str) -> str:
    """Every document with something to show (up to MAX_EXAMPLES), gold above predicted; a box hides the error-free ones."""
    palette, sections = colours(labels), []
    shown = [(d, a) for d, a in zip(evaluation.documents, evaluation.articles) if d.entities or a.entities]
    for doc, article in shown[:MAX_EXAMPLES]:
        gold, pred, errors = example_views(doc, article, evaluation.symmetric)
        sections.append(f'<section class="example" data-errors="{errors}"><h2>{html.escape(doc.id)}: {errors} errors</h2>'
                        f"{render_view(gold, palette)}{render_view(pred, palette)}</section>")
    note = f"<p>The first {MAX_EXAMPLES} of {len(shown)} documents.</p>" if len(shown) > MAX_EXAMPLES else ""
    toggle = ('<label><input type="checkbox" id="errors-only"> only documents with errors</label><script>'
              'document.getElementById("errors-only").onchange=function(e){document.querySelectorAll("section.example")'
              '.forEach(function(s){s.style.display=e.target.checked&&s.dataset.errors==="0"?"none":"";});};</script>')
    return page(title, note + toggle + "".join(sections), labels, statuses=True)


def write_report(directory: Path, level: str, evaluation: Evaluation, header: dict[str, str]) -> Path:
    """report_LEVEL.html, report_LEVEL.md, examples_LEVEL.html and the plots into `directory`; returns the HTML path."""
    directory.mkdir(parents=True, exist_ok=True)
    metrics = evaluation.metrics
    title = f"evaluation, {level} level: {header['model']} on {header['data']}"
    per_type = {"entities": metrics["ner"]["per_type"]}
    thresholds = {"entities": metrics["ner"]["thresholds"]}
    if metrics.get("relations"):
        per_type["relations (Rel+)"] = metrics["relations"]["strict"]["per_type"]
        thresholds["relations (Rel+)"] = metrics["relations"]["thresholds"]
    plots = {f"f1_{level}.png": "F1 per type", f"reliability_{level}.png": "reliability diagram",
             f"thresholds_{level}.png": "precision, recall and share kept by min_score"}
    names = list(plots)
    f1_bars(per_type, directory / names[0], f"F1 per type, {level} level")
    reliability_diagram(reliability_curves(evaluation), directory / names[1], f"reliability, {len(evaluation.documents)} documents")
    threshold_curves(thresholds, directory / names[2], f"by score threshold, {level} level")
    labels = sorted({e.label for d in evaluation.documents for e in d.entities} | {e.label for a in evaluation.articles for e in a.entities})
    examples = f"examples_{level}.html"
    (directory / examples).write_text(examples_page(evaluation, labels, f"examples, {title}"), encoding="utf-8")

    facts = [(k, str(v)) for k, v in header.items()] + [("level", level), ("documents", str(len(evaluation.documents)))]
    all_tables = tables(metrics)
    markdown = [f"# {title}", ""] + [f"- {k}: `{v}`" for k, v in facts] + ["", f"Examples (right, wrong, missed): [{examples}]({examples})", ""]
    markdown += [t.markdown() + "\n" for t in all_tables] + [f"![{alt}]({name})\n" for name, alt in plots.items()]
    (directory / f"report_{level}.md").write_text("\n".join(markdown), encoding="utf-8")

    images = "".join(
        f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode((directory / name).read_bytes()).decode()}">'
        for name, alt in plots.items()
    )
    body = ("<ul>" + "".join(f"<li>{html.escape(k)}: <code>{html.escape(v)}</code></li>" for k, v in facts) + "</ul>"
            + f'<p><a href="{examples}">Examples: right, wrong and missed entities and relations per document</a></p>'
            + f"<div>{images}</div>" + "".join(t.html() for t in all_tables))
    out = directory / f"report_{level}.html"
    out.write_text(page(title, body, labels), encoding="utf-8")
    return out
