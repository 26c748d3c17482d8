"""The bad-input catalogue (issue 8): every case gets a valid result or a clear error, through the
Python API and the command line, and offsets always satisfy text[start:end] == entity.text.

Input policy (README, "Input policy"): texts are taken as they are, markup included; characters
the tokenizer would drop or cannot encode (control characters, zero-width spaces, BOMs, lone
surrogates) are read as word separators without changing any offset; files must be UTF-8 (an
invalid byte is an error naming the file, line and byte offset).
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inference import NewsExtractor
from inference.cli import main as predict_main
from inference.schema import Article
from inference.windows import make_windows, tokenize, window_owners

KNOWN = "John Smith works for Acme Corp in Boston."
CATALOGUE = {
    "empty": "",
    "whitespace": " \t\n\r\n \u00a0\u2003 ",
    "single-5000-char-token": "x" * 5000,
    "5000-char-token-between-names": f"John Smith met {'A' * 5000} in Boston.",
    "control-characters": "John\x00Smith\x01works\x07for\x1bAcme Corp\x7f in\x0bBoston.\x0c\x85",
    "nul-bytes": "\x00" * 50 + KNOWN + "\x00" * 10,
    "zero-width-spaces-and-bom": "\ufeffJohn\u200bSmith works for Acme\ufeffCorp in Boston.",
    "arabic-persian-rtl": "\u200fمحمد بن عبدالعزيز الخليفي\u200f met \u202bعلی\u200cرضا رضایی\u202c in تهران and دبی.",
    "emoji-and-zwj": "John 😀 Smith 👨\u200d👩\u200d👧 works for Acme 🏳️\u200d🌈 Corp in Boston 🇺🇸.",
    "combining-accents": "Jose\u0301 Mu\u0308ller and Zoe\u0308 A\u030angstro\u0308m" + "\u0301" * 300 + " in Paris.",
    "crlf": "John Smith works for Acme Corp.\r\nMaria Lopez lives in Paris.\r\n\r\nReuters\rLondon",
    "html-markup": "<p>John <b>Smith</b> works for <a href='https://acme.example'>Acme Corp</a> in Boston.</p>"
    "&amp;&nbsp;<script>alert('Peter Blackburn')</script><!-- Geneva -->",
    "lone-surrogate": "John \ud800 Smith works for Acme Corp in Boston.",
}


def check_article(article: Article, text: str) -> None:
    """What every result must satisfy, whatever the input."""
    by_id = {e.id: e for e in article.entities}
    assert len(by_id) == len(article.entities)
    for e in article.entities:
        assert 0 <= e.start < e.end <= len(text) and text[e.start : e.end] == e.text
        assert 0.0 <= e.score <= 1.0
    assert all(a.end <= b.start for a, b in zip(article.entities, article.entities[1:])), "sorted, not overlapping"
    for r in article.relations:
        assert r.head in by_id and r.tail in by_id and r.head != r.tail and 0.0 <= r.score <= 1.0


@pytest.fixture(scope="module")
def extractor(tiny_run: Path) -> NewsExtractor:
    return NewsExtractor.from_pretrained(tiny_run)


@pytest.fixture(scope="module")
def micro_run(tiny_run: Path, tmp_path_factory) -> Path:
    """The tiny run with both encoders swapped for a one-layer, 16-wide random BERT: the same
    tokenizer, windows and code paths at a fraction of the cost, for the million-character case."""
    from transformers import BertConfig, BertForTokenClassification, BertModel

    from inference.relations import RelationModel

    run = tmp_path_factory.mktemp("micro") / "run"
    shutil.copytree(tiny_run, run)
    settings = json.loads((run / "extractor.json").read_text())
    ner_config = json.loads((run / "ner" / "config.json").read_text())
    size = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, type_vocab_size=5,
                max_position_embeddings=64, vocab_size=ner_config["vocab_size"])
    ner = BertForTokenClassification(BertConfig(**size, id2label=ner_config["id2label"], label2id=ner_config["label2id"]))
    ner.save_pretrained(run / "ner")
    RelationModel(BertModel(BertConfig(**size)), len(settings["relations"]["labels"]) + 1).save(run / "relations")
    return run


@pytest.mark.parametrize("name", list(CATALOGUE))
def test_catalogue_through_the_api(extractor: NewsExtractor, name: str):
    text = CATALOGUE[name]
    article = extractor.extract(text)
    check_article(article, text)
    if not text.strip():
        assert article.entities == [] and article.relations == []


def test_separators_split_words_instead_of_gluing_them(extractor: NewsExtractor):
    # The tokenizer drops control characters and zero-width spaces; read as spaces, the words
    # around them stay apart, so "John\x00Smith" is two words, as "John Smith" is.
    toks = tokenize(extractor.tagger.tokenizer, [CATALOGUE["control-characters"], "a\u200bb\ufeffc"])
    assert [CATALOGUE["control-characters"][s:e] for s, e in toks[0].words][:4] == ["John", "Smith", "works", "for"]
    assert ["a\u200bb\ufeffc"[s:e] for s, e in toks[1].words] == ["a", "b", "c"]
    # Persian's zero-width non-joiner joins the parts of one word and is kept.
    persian = "علی\u200cرضا"
    assert [persian[s:e] for s, e in tokenize(extractor.tagger.tokenizer, [persian])[0].words][0].startswith("علی")


def test_known_entities_at_the_end_of_a_long_article_are_found(extractor: NewsExtractor):
    filler = "The committee said on Tuesday that the talks would go on. "
    text = filler * 150 + KNOWN  # 8,800 characters, about 300 windows of the tiny run's 32 tokens
    article = extractor.extract(text)
    check_article(article, text)
    found = {(e.text, e.label) for e in article.entities if e.start >= len(text) - len(KNOWN)}
    assert found & {("John Smith", "Peop"), ("Acme Corp", "Org"), ("Boston", "Loc")}
    assert found == {(e.text, e.label) for e in extractor.extract(KNOWN).entities}, "as found in the sentence alone"


def test_a_million_characters_complete_and_nothing_is_truncated(micro_run: Path):
    extractor = NewsExtractor.from_pretrained(micro_run)
    filler = "The committee said on Tuesday that the talks with Qatar Airways would go on in Geneva. "
    text = (filler * (1_000_000 // len(filler) + 1))[: 1_000_000 - len(KNOWN) - 1] + " " + KNOWN
    assert len(text) == 1_000_000
    (tokens,) = tokenize(extractor.tagger.tokenizer, [text])
    assert tokens.offsets[-1][1] == len(text), "the last character is tokenized"
    windows = make_windows(tokens, extractor.tagger.spec)
    owned = window_owners(windows)
    assert owned[0][0] == 0 and owned[-1][1] == len(tokens.input_ids)
    assert all(a[1] == b[0] for a, b in zip(owned, owned[1:])), "each token owned by exactly one window"
    # Merged predictions: every word's logits were written by the window owning it (a 100,000-
    # character prefix: the same scatter code, a tenth of the cost).
    (prefix,) = tokenize(extractor.tagger.tokenizer, [text[:100_000]])
    (logits,) = extractor.tagger.word_logits([prefix], batch_size=256)
    assert len(logits) == len(prefix.words) and bool((logits != 0).any(-1).all()), "every word read from a window"
    started = time.perf_counter()
    (article,) = extractor.extract_many([text], batch_size=256)
    seconds = time.perf_counter() - started
    check_article(article, text)
    assert seconds < 300, f"{seconds:.0f} s for a million characters"


def write_inputs(folder: Path) -> dict[Path, str]:
    paths = {}
    for k, (name, text) in enumerate(CATALOGUE.items()):
        if name == "lone-surrogate":
            continue  # not encodable in a file; its JSONL escape is tested below
        path = folder / f"{k:02d}-{name}.txt"
        path.write_bytes(text.encode("utf-8"))
        paths[path] = text
    return paths


def test_catalogue_through_the_command_line(tiny_run: Path, tmp_path: Path):
    paths = write_inputs(tmp_path)
    done = subprocess.run(
        [sys.executable, "-m", "inference", "predict", "--model", str(tiny_run), *map(str, paths)],
        capture_output=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr.decode()
    decoder, out, pos, results = json.JSONDecoder(), done.stdout.decode("utf-8"), 0, []
    while out[pos:].strip():
        obj, pos = decoder.raw_decode(out, pos + len(out[pos:]) - len(out[pos:].lstrip()))
        results.append(obj)
    assert [r["id"] for r in results] == list(map(str, paths))
    for r, text in zip(results, paths.values()):
        for e in r["entities"]:
            assert text[e["start"] : e["end"]] == e["text"]


def test_jsonl_catalogue_and_its_escapes(tiny_run: Path, tmp_path: Path, capsys):
    lines = tmp_path / "catalogue.jsonl"
    lines.write_text("".join(json.dumps({"id": n, "text": t}) + "\n" for n, t in CATALOGUE.items() if n != "lone-surrogate"),
                     encoding="utf-8")
    raw = tmp_path / "raw-separators.jsonl"  # U+2028 and U+0085 may stand unescaped inside JSON strings
    raw.write_text('{"id": "ls", "text": "John Smith\u2028in Boston\u0085today"}\n', encoding="utf-8")
    assert predict_main(["predict", "--model", str(tiny_run), "--jsonl", str(lines), str(raw)]) == 0
    results = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    texts = {**CATALOGUE, "ls": "John Smith\u2028in Boston\u0085today"}
    assert [r["id"] for r in results] == [n for n in CATALOGUE if n != "lone-surrogate"] + ["ls"]
    for r in results:
        for e in r["entities"]:
            assert texts[r["id"]][e["start"] : e["end"]] == e["text"]
    surrogate = tmp_path / "surrogate.jsonl"
    surrogate.write_text('{"id": "a", "text": "fine"}\n{"id": "b", "text": "John \\ud800 Smith"}\n', encoding="ascii")
    assert predict_main(["predict", "--model", str(tiny_run), "--jsonl", str(surrogate)]) == 2
    assert f"{surrogate}:2: 'text' holds a lone surrogate escape at character 5" in capsys.readouterr().err


@pytest.mark.parametrize("jsonl", [False, True])
def test_invalid_utf8_names_file_line_and_byte_offset(tiny_run: Path, tmp_path: Path, capsys, jsonl: bool):
    path = tmp_path / ("bad.jsonl" if jsonl else "bad.txt")
    path.write_bytes(b'{"text": "ok"}\n{"text": "caf\xe9"}\n' if jsonl else b"line one\ncaf\xe9\n")
    args = ["predict", "--model", str(tiny_run), *(["--jsonl"] if jsonl else []), str(path)]
    assert predict_main(args) == 2
    offset = path.read_bytes().index(b"\xe9")
    assert f"{path}:2: not valid UTF-8 (byte offset {offset}, 0xe9)" in capsys.readouterr().err


def test_empty_file_and_empty_stdin_give_empty_results(tiny_run: Path, tmp_path: Path, capsys, monkeypatch):
    import io

    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    assert predict_main(["predict", "--model", str(tiny_run), str(empty)]) == 0
    assert json.loads(capsys.readouterr().out) == {"id": str(empty), "entities": [], "relations": []}
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    assert predict_main(["predict", "--model", str(tiny_run), "-"]) == 0
    assert json.loads(capsys.readouterr().out) == {"id": "stdin", "entities": [], "relations": []}


def test_one_string_given_for_many_texts_is_refused_not_read_character_by_character(extractor: NewsExtractor):
    with pytest.raises(TypeError, match="extract_many takes a list of texts; extract takes one text"):
        extractor.extract_many("John Smith works for Acme Corp.")


@pytest.mark.parametrize("batch_size", [0, -1])
def test_a_batch_size_under_one_is_refused_not_read_as_no_entities(extractor: NewsExtractor, tiny_run: Path, capsys, batch_size: int):
    """A negative batch size used to read no window at all, so every text came back without
    entities (and `predict` wrote nothing); 0 failed deep inside with a message about range()."""
    with pytest.raises(ValueError, match=f"batch_size must be a whole number of at least 1, got {batch_size}"):
        extractor.extract_many(["John Smith works for Acme Corp."], batch_size=batch_size)
    with pytest.raises(SystemExit) as stop:
        predict_main(["predict", "--model", str(tiny_run), "--batch-size", str(batch_size), "-"])
    assert stop.value.code == 2
    assert f"--batch-size: expected a whole number of at least 1, got '{batch_size}'" in capsys.readouterr().err
