"""HTML pages of articles: escaping, marks, relation lists, the predict command's outputs, and the
page as a real browser (headless Chromium) draws it."""
from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from inference.render import Arc, Mark, View, article_view, colours, page, render_articles, render_view
from inference.schema import Article, Entity, Relation

TEXT = 'Ann <b>Lee</b> & "Bob" work for <script>alert(1)</script> Acme in Oslo.'


def hostile_article() -> Article:
    def ent(id_: str, part: str, label: str, score: float) -> Entity:
        start = TEXT.index(part)
        return Entity(id_, start, start + len(part), part, label, score)

    entities = [ent("T1", "Ann <b>Lee</b>", "Peop", 0.91), ent("T2", "Acme", "Org<x>", 0.5), ent("T3", "Oslo", "Loc", 0.77)]
    return Article('doc "1" <i>', TEXT, entities, [Relation("T1", "T2", "Work_For", 0.8), Relation("T2", "T3", "OrgBased_In", 0.6)])


def test_every_piece_of_text_is_escaped():
    html = render_articles([hostile_article()], "title <x>", ["Peop", "Org<x>", "Loc"])
    assert "<script>alert" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>" not in html and "<i>" not in html and "<x>" not in html
    assert "Ann &lt;b&gt;Lee&lt;/b&gt;" in html and "&amp; &quot;Bob&quot;" in html


def test_marks_carry_type_colour_and_score_and_relations_are_listed():
    article = hostile_article()
    palette = colours(["Peop", "Org<x>", "Loc"])
    html = render_view(article_view(article), palette)
    marks = re.findall(r'<mark class="ent" data-key="(T\d)" data-label="([^"]*)" style="background:([^"]+)" title="([^"]*)">', html)
    assert [(k, lab) for k, lab, _, _ in marks] == [("T1", "Peop"), ("T2", "Org&lt;x&gt;"), ("T3", "Loc")]
    assert marks[0][2] == palette["Peop"] and len({c for _, _, c, _ in marks}) == 3, "a colour per type"
    assert marks[0][3] == "Peop, score 0.910"
    rows = re.findall(r'<tr data-head="(T\d)" data-tail="(T\d)" data-label="([^"]+)"', html)
    assert rows == [("T1", "T2", "Work_For"), ("T2", "T3", "OrgBased_In")]


def test_overlapping_marks_keep_the_text_whole():
    view = View("v", "New York City", [Mark("a", 0, 8, "Loc"), Mark("b", 4, 13, "Loc"), Mark("c", 9, 13, "Org", status="fn")])
    html = render_view(view, colours(["Loc", "Org"]))
    text = re.sub(r"<span class=\"lbl\">[^<]*</span>", "", re.search(r'<div class="text">(.*?)</div>', html).group(1))
    assert re.sub(r"<[^>]+>", "", text) == "New York City", "no character lost or repeated"
    assert 'data-key="b"' not in html and 'class="ent fn" data-key="c"' in html


def test_page_is_self_contained():
    html = page("t", render_view(View("v", "x", [], [Arc("a", "b", "R")]), {}), ["Loc"])
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html), "nothing fetched from the network"
    assert html.startswith("<!DOCTYPE html>") and "<style>" in html and "<script>" in html


def test_predict_writes_jsonl_and_html_from_files_folders_and_jsonl(tiny_run: Path, tmp_path: Path, capsys):
    from inference.cli import main

    folder = tmp_path / "in"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("John Smith works for Acme Corp in Boston .", encoding="utf-8")
    (folder / "sub" / "b.jsonl").write_text('{"id": "b1", "text": "Maria Lopez lives in Paris ."}\n{"id": "b2", "text": "<b>"}\n')
    (folder / "ignored.md").write_text("not an input")
    out = tmp_path / "out.jsonl"
    assert main(["predict", "--model", str(tiny_run), str(folder), "--out", str(out), "--batch-size", "2"]) == 0
    lines = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [x["id"] for x in lines] == [str(folder / "a.txt"), "b1", "b2"]
    assert lines[0]["entities"], "the tiny run finds entities in a training sentence"

    pages = tmp_path / "pages"
    assert main(["predict", "--model", str(tiny_run), str(folder), "--format", "html", "--out", str(pages)]) == 0
    names = sorted(p.name for p in pages.iterdir())
    assert names == ["0001-a.txt.html", "0002-b1.html", "0003-b2.html", "index.html"]
    b2 = (pages / "0003-b2.html").read_text(encoding="utf-8")
    assert "<b>" not in b2 and "&lt;" in b2
    assert 'href="0002-b1.html"' in (pages / "index.html").read_text(encoding="utf-8")

    assert main(["predict", "--model", str(tiny_run), str(folder / "a.txt"), "--format", "html"]) == 0
    assert capsys.readouterr().out.count('<div class="view">') == 1
    assert main(["predict", "--model", str(tiny_run), str(tmp_path / "empty-folder-missing")]) == 2
    assert "cannot read" in capsys.readouterr().err


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(chromium() is None, reason="no Chromium here (Debian: apt-get install chromium)")
def test_headless_chromium_shows_the_entities_and_draws_the_arcs(tiny_run: Path, tmp_path: Path):
    from inference import NewsExtractor

    extractor = NewsExtractor.from_pretrained(tiny_run)
    article = extractor.extract("John Smith works for Acme Corp in Boston . Maria Lopez lives in Paris .", id="news")
    assert article.entities and article.relations, "the tiny run finds both in training sentences"
    path = tmp_path / "page.html"
    path.write_text(render_articles([article, hostile_article()], "check", extractor.entity_labels + ["Org<x>"]), encoding="utf-8")
    dom = subprocess.run(
        [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=2000", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=60,
    ).stdout
    assert "</html>" in dom, "Chromium printed no page"
    for e in article.entities:
        assert re.search(rf'<mark class="ent" data-key="{e.id}" data-label="{e.label}"[^>]*>{re.escape(e.text)}<span', dom)
    assert dom.count('<path class="arc"') == len(article.relations) + 2, "the script drew one arc per relation"
    assert "alert(1)" in dom and "<script>alert" not in dom
