"""benchmarks/throughput.py end to end on three tiny articles, and its input errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

ARTICLES = {
    "business/001.txt": "Acme Corp opens office\n\nJohn Smith works for Acme Corp in Boston.",
    "politics/001.txt": "Talks in Geneva\n\nThe United Nations met in Geneva on Monday.",
    "sports/001.txt": "Lopez wins\n\nMaria Lopez lives in Paris and won again.",
}


@pytest.fixture(scope="module")
def throughput():
    from benchmarks import throughput  # a package module: its rows pickle into the child processes

    return throughput


@pytest.fixture()
def bbc(tmp_path: Path) -> Path:
    for name, text in ARTICLES.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


def test_throughput_runs_on_three_articles(throughput, tiny_run: Path, bbc: Path, tmp_path: Path):
    out = tmp_path / "result.json"
    argv = ["--model", str(tiny_run), "--data", str(bbc), "--articles", "3", "--threads", "1", "--backend", "torch", "--out", str(out)]
    assert throughput.main(argv) == 0
    result = json.loads(out.read_text())
    rows = {r["name"]: r for r in result["rows"]}
    assert list(rows) == ["forward", "ours-ner-torch", "ours-ner+rel-torch", "pipeline", "spacy"]
    for name in ("forward", "ours-ner-torch", "ours-ner+rel-torch", "pipeline"):
        assert rows[name]["articles_per_s"] > 0 and rows[name]["peak_rss_mib"] > 0
    assert "ours-ner-torch / forward" in result["ratios"] and "ours-ner-torch / pipeline" in result["ratios"]
    assert result["articles"] == 3 and result["tokens"] > 0 and result["loadavg_before"] and result["commit"]


def test_bad_input_is_a_clear_error(throughput, tiny_run: Path, bbc: Path, capsys):
    assert throughput.main(["--model", str(tiny_run), "--data", str(bbc), "--articles", "5"]) == 2
    assert "fewer than the 5" in capsys.readouterr().err
    assert throughput.main(["--model", str(bbc), "--data", str(bbc), "--articles", "3"]) == 2
    with pytest.raises(SystemExit):
        throughput.main(["--model", str(tiny_run), "--backend", "tensorrt"])


def test_articles_are_taken_in_turn_and_unreadable_ones_left_out(throughput, bbc: Path, capsys):
    (bbc / "business" / "002.txt").write_text("Second business story", encoding="utf-8")
    (bbc / "politics" / "002.txt").write_bytes("Budget of \xa35bn".encode("latin-1"))
    texts = throughput.load_articles(bbc, 4)
    assert texts == [ARTICLES["business/001.txt"], ARTICLES["politics/001.txt"], ARTICLES["sports/001.txt"],
                     "Second business story"]
    assert "politics/002.txt:1: invalid UTF-8 byte 0xa3: file left out" in capsys.readouterr().err
    with pytest.raises(ValueError, match="4 articles, fewer than the 5"):
        throughput.load_articles(bbc, 5)
