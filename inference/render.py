"""HTML views of entities and relations: self-contained pages that open offline.

A `View` is one text with highlighted spans (`Mark`, a colour per entity type, the score on
hover) and relations (`Arc`), listed beside the text and drawn as labelled arcs above it by a
few lines of inline JavaScript (no external CSS, fonts or scripts). Marks may carry an
evaluation status (tp, fp, fn), which the evaluation report uses to show errors. Every piece of
text is HTML-escaped.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field

from .schema import Article

# Distinct, readable background colours; types beyond the palette reuse it in order.
PALETTE = ["#7aecec", "#feca74", "#bfeeb7", "#aa9cfc", "#ff9561", "#c887fb", "#9cc9cc", "#e4e7d2", "#ffeb80", "#f0a3b6"]
STATUS_NAMES = {"tp": "right (true positive)", "fp": "wrong (false positive)", "fn": "missed (false negative)"}


@dataclass(frozen=True)
class Mark:
    """A highlighted span `text[start:end]` of type `label`; `key` is what arcs refer to."""

    key: str
    start: int
    end: int
    label: str
    score: float | None = None
    status: str = ""  # "", or tp / fp / fn in evaluation views


@dataclass(frozen=True)
class Arc:
    """A relation from the mark `head` to the mark `tail`."""

    head: str
    tail: str
    label: str
    score: float | None = None
    status: str = ""


@dataclass
class View:
    """One text with its marks and arcs, under a caption."""

    caption: str
    text: str
    marks: list[Mark] = field(default_factory=list)
    arcs: list[Arc] = field(default_factory=list)


def article_view(article: Article) -> View:
    """The view of an extracted article: its entities and relations with their scores."""
    return View(
        article.id,
        article.text,
        [Mark(e.id, e.start, e.end, e.label, e.score) for e in article.entities],
        [Arc(r.head, r.tail, r.label, r.score) for r in article.relations],
    )


def colours(labels: list[str]) -> dict[str, str]:
    """A background colour per entity type, stable for a given label set."""
    return {label: PALETTE[k % len(PALETTE)] for k, label in enumerate(sorted(labels))}


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _hover(label: str, score: float | None, status: str) -> str:
    parts = [label] + ([f"score {score:.3f}"] if score is not None else []) + ([STATUS_NAMES[status]] if status else [])
    return ", ".join(parts)


def render_view(view: View, palette: dict[str, str]) -> str:
    """The HTML of one view: the text with its marks and an arc layer, and the relation list beside.

    Marks must not overlap to be drawn in the text; an overlapping one is left out of the text
    (its relations are still listed).
    """
    shown, end = [], 0
    for m in sorted(view.marks, key=lambda m: (m.start, -m.end)):
        if m.start >= end:
            shown.append(m)
            end = m.end
    pieces, at = [], 0
    for m in shown:
        pieces.append(_esc(view.text[at : m.start]))
        status = f" {m.status}" if m.status else ""
        pieces.append(
            f'<mark class="ent{status}" data-key="{_esc(m.key)}" data-label="{_esc(m.label)}" '
            f'style="background:{palette.get(m.label, "#ddd")}" title="{_esc(_hover(m.label, m.score, m.status))}">'
            f'{_esc(view.text[m.start : m.end])}<span class="lbl">{_esc(m.label)}</span></mark>'
        )
        at = m.end
    pieces.append(_esc(view.text[at:]))
    by_key = {m.key: m for m in view.marks}
    rows = []
    for a in view.arcs:
        head, tail = by_key.get(a.head), by_key.get(a.tail)
        head_text = _esc(view.text[head.start : head.end]) if head else _esc(a.head)
        tail_text = _esc(view.text[tail.start : tail.end]) if tail else _esc(a.tail)
        score = f"{a.score:.2f}" if a.score is not None else ""
        status = f' class="{a.status}"' if a.status else ""
        rows.append(
            f'<tr{status} data-head="{_esc(a.head)}" data-tail="{_esc(a.tail)}" data-label="{_esc(a.label)}" '
            f'title="{_esc(_hover(a.label, a.score, a.status))}"><td>{head_text}</td><td class="rel">{_esc(a.label)} →</td>'
            f"<td>{tail_text}</td><td>{score}</td></tr>"
        )
    relations = (
        f'<table class="relations"><tr><th>head</th><th>relation</th><th>tail</th><th>score</th></tr>{"".join(rows)}</table>'
        if rows else '<p class="none">no relations</p>'
    )
    return (
        f'<div class="view"><div class="caption">{_esc(view.caption)}</div>'
        f'<div class="body"><div class="textbox"><svg class="arcs"></svg><div class="text">{"".join(pieces)}</div></div>'
        f'<div class="side">{relations}</div></div></div>'
    )


def legend(labels: list[str], statuses: bool = False) -> str:
    """The colour of each entity type (and, for evaluation pages, how statuses are drawn)."""
    palette = colours(labels)
    items = [f'<span class="key" style="background:{palette[label]}">{_esc(label)}</span>' for label in sorted(labels)]
    if statuses:
        items += [f'<span class="key {s}">{_esc(name)}</span>' for s, name in STATUS_NAMES.items()]
    return f'<div class="legend">{"".join(items)}</div>'


def page(title: str, body: str, labels: list[str], statuses: bool = False) -> str:
    """A complete HTML document around `body`, with the legend, styles and arc-drawing script inline."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_esc(title)}</title>'
        f"<style>{_CSS}</style></head><body>{_ARROW}<h1>{_esc(title)}</h1>{legend(labels, statuses)}{body}"
        f"<script>{_SCRIPT}</script></body></html>\n"
    )


def render_articles(articles: list[Article], title: str, labels: list[str]) -> str:
    """One page showing every article."""
    palette = colours(labels)
    return page(title, "".join(render_view(article_view(a), palette) for a in articles), labels)


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.6em}
.legend{margin:.5em 0 1em}.key{display:inline-block;padding:.1em .5em;margin:.1em .3em .1em 0;border-radius:.3em;font-size:.85em}
.view{border-top:1px solid #ddd;padding:.6em 0}.caption{font-weight:600;color:#555;font-size:.9em}
.body{display:flex;gap:1.5em;align-items:flex-start}.textbox{position:relative;flex:1;min-width:0}
.side{flex:0 0 24em;font-size:.85em}
.text{white-space:pre-wrap;line-height:3.2;position:relative}
svg.arcs{position:absolute;left:0;top:0;width:100%;height:100%;pointer-events:none;overflow:visible}
svg.arcs path{fill:none;stroke:#555;stroke-width:1.2}svg.arcs text{font-size:10px;fill:#333}
mark.ent{padding:.15em .3em;border-radius:.35em;line-height:1;-webkit-box-decoration-break:clone;box-decoration-break:clone}
mark.ent .lbl{font-size:.65em;font-weight:700;margin-left:.35em;text-transform:uppercase;vertical-align:middle}
.tp{outline:2px solid #1a9d3a}.fp{outline:2px dashed #d62728}.fn{outline:2px dotted #e07b00}
table.relations{border-collapse:collapse}table.relations td,table.relations th{padding:.15em .4em;border-bottom:1px solid #eee;text-align:left}
tr.tp td{background:#e3f6e6}tr.fp td{background:#fbe3e3}tr.fn td{background:#fdf0dc}
td.rel{font-weight:600;white-space:nowrap}.none{color:#888}
table.scores{border-collapse:collapse;margin:.5em 0}table.scores td,table.scores th{padding:.2em .6em;border:1px solid #ddd;text-align:right}
table.scores th:first-child,table.scores td:first-child{text-align:left}img{max-width:32em;margin:.5em 1em .5em 0}
"""

_ARROW = (
    '<svg width="0" height="0" style="position:absolute"><defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" '
    'markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0L10,5L0,10z" fill="#555"/></marker></defs></svg>'
)

# Draws each relation row of a view as an arc from the head mark to the tail mark, above the text.
_SCRIPT = """
(function(){
  var NS="http://www.w3.org/2000/svg";
  document.querySelectorAll(".view").forEach(function(view){
    var box=view.querySelector(".textbox"), svg=view.querySelector("svg.arcs");
    if(!box||!svg)return;
    var origin=box.getBoundingClientRect(), marks={};
    view.querySelectorAll("mark.ent").forEach(function(m){marks[m.dataset.key]=m;});
    view.querySelectorAll("tr[data-head]").forEach(function(row,k){
      var h=marks[row.dataset.head], t=marks[row.dataset.tail];
      if(!h||!t)return;
      var a=h.getClientRects()[0], b=t.getClientRects()[0];  // the first line of a mark that wraps
      var x1=a.left+a.width/2-origin.left, y1=a.top-origin.top, x2=b.left+b.width/2-origin.left, y2=b.top-origin.top;
      var lift=14+6*(k%3), top=Math.min(y1,y2)-lift;
      var path=document.createElementNS(NS,"path");
      path.setAttribute("class","arc");
      path.setAttribute("d","M"+x1+","+y1+" C"+x1+","+top+" "+x2+","+top+" "+x2+","+y2);
      path.setAttribute("marker-end","url(#arrow)");
      var label=document.createElementNS(NS,"text");
      label.setAttribute("x",(x1+x2)/2);label.setAttribute("y",top+2);label.setAttribute("text-anchor","middle");
      label.textContent=row.dataset.label;
      svg.appendChild(path);svg.appendChild(label);
    });
  });
})();
"""
