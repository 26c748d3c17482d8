"""Tests of training.readers: every format, offsets, Unicode, and one-line errors for bad input."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference.schema import Document, RelationMention, Span
from training.corpora import shared_data_dir
from training.readers import FORMATS, ReaderError, read_documents
from training.readers.jsonl import write_jsonl
from training.readers.tokens import build_document

DATA = shared_data_dir()


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def mentions(doc: Document) -> list[tuple[str, str]]:
    return [(doc.text[s.start : s.end], s.label) for s in doc.entities]


def conll(*sentences: str) -> str:
    """CoNLL-2003 text from sentences written as 'token/TAG token/TAG ...'; '-DOCSTART-' starts an article."""
    blocks = []
    for sentence in sentences:
        if sentence == "-DOCSTART-":
            blocks.append("-DOCSTART- -X- -X- O\n")
        else:
            blocks.append("".join(f"{tok} NNP B-NP {tag}\n" for tok, tag in (w.rsplit("/", 1) for w in sentence.split())))
    return "\n".join(blocks) + "\n"


def assert_error(excinfo: pytest.ExceptionInfo[ReaderError], path: Path, line: int, *words: str) -> None:
    err = excinfo.value
    assert str(err).startswith(f"{path}:{line}: ")
    assert "\n" not in str(err)
    assert (err.path, err.line) == (path, line)
    for word in words:
        assert word in err.reason


# ---- package ---------------------------------------------------------------------------------

def test_reader_error_message_and_attributes() -> None:
    err = ReaderError("a.txt", 7, "bad tag")
    assert isinstance(err, ValueError)
    assert str(err) == "a.txt:7: bad tag"
    assert (err.path, err.line, err.reason) == ("a.txt", 7, "bad tag")


def test_unknown_format_lists_formats(tmp_path: Path) -> None:
    path = write(tmp_path, "a.txt", "")
    with pytest.raises(ValueError, match="unknown format 'bio'") as excinfo:
        read_documents(path, "bio")
    assert all(name in str(excinfo.value) for name in FORMATS)


@pytest.mark.parametrize("format", FORMATS)
def test_missing_file(tmp_path: Path, format: str) -> None:
    with pytest.raises(FileNotFoundError, match="nope"):
        read_documents(tmp_path / "nope.txt", format)


@pytest.mark.parametrize("format", FORMATS)
def test_invalid_utf8_names_the_line(tmp_path: Path, format: str) -> None:
    path = write(tmp_path, "bad.txt", b"first\nsecond\nthi\xffrd\n")
    with pytest.raises(ReaderError) as excinfo:
        read_documents(path, format)
    assert_error(excinfo, path, 3, "UTF-8")


def test_build_document_offsets() -> None:
    doc = build_document("d", [["Zoë", "met", "Ana"], ["Bye"]], [(0, 0, 1, "PER"), (0, 2, 3, "PER")], [(0, 1, "knows")])
    assert doc.text == "Zoë met Ana\nBye"
    assert doc.sentences == [(0, 11), (12, 15)]
    assert doc.tokens == [(0, 3), (4, 7), (8, 11), (12, 15)]
    assert mentions(doc) == [("Zoë", "PER"), ("Ana", "PER")]
    assert doc.relations == [RelationMention(0, 1, "knows")]
    with pytest.raises(ValueError, match="outside"):
        build_document("d", [["a"]], [(1, 0, 1, "X")])


# ---- CoNLL-2003 ------------------------------------------------------------------------------

def test_conll_articles_unicode_and_offsets(tmp_path: Path) -> None:
    path = write(tmp_path, "news.txt", conll(
        "-DOCSTART-",
        "محمد/B-PER جواد/I-PER ظريف/I-PER visited/O Doha/B-LOC ./O",
        "José/B-PER Müller/I-PER spoke/O",
        "-DOCSTART-",
        "Zoë/B-PER left/O Société/B-ORG Générale/I-ORG",
    ))
    docs = read_documents(path, "conll2003")
    assert [d.id for d in docs] == ["news-0", "news-1"]
    first, second = docs
    assert first.text == "محمد جواد ظريف visited Doha .\nJosé Müller spoke"
    assert mentions(first) == [("محمد جواد ظريف", "PER"), ("Doha", "LOC"), ("José Müller", "PER")]
    assert first.sentences == [(0, 29), (30, 47)]
    assert len(first.tokens) == 9 and first.text[slice(*first.tokens[7])] == "Müller"
    assert mentions(second) == [("Zoë", "PER"), ("Société Générale", "ORG")]
    assert second.relations == []


def test_conll_without_docstart_is_one_article_and_iob1(tmp_path: Path) -> None:
    # IOB1: I-X after O or after another type starts an entity; B-X separates two same-type entities.
    path = write(tmp_path, "iob1.txt", conll(
        "U.N./I-ORG official/O Rolf/I-PER Ekeus/I-PER Baghdad/I-LOC",
        "Peter/I-PER Blackburn/I-PER Anna/B-PER Smith/I-PER ./O",
    ))
    docs = read_documents(path, "conll2003")
    assert len(docs) == 1 and docs[0].id == "iob1-0"
    assert mentions(docs[0]) == [
        ("U.N.", "ORG"), ("Rolf Ekeus", "PER"), ("Baghdad", "LOC"), ("Peter Blackburn", "PER"), ("Anna Smith", "PER"),
    ]


def test_conll_entity_does_not_cross_sentences(tmp_path: Path) -> None:
    path = write(tmp_path, "s.txt", conll("Paris/B-LOC", "London/I-LOC"))
    assert mentions(read_documents(path, "conll2003")[0]) == [("Paris", "LOC"), ("London", "LOC")]


def test_conll_crlf_and_extra_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "crlf.txt", "-DOCSTART- -X- -X- O\r\n\r\n\r\nBonn NNP B-NP B-LOC\r\n\r\n\r\n")
    (doc,) = read_documents(path, "conll2003")
    assert doc.text == "Bonn" and mentions(doc) == [("Bonn", "LOC")]


@pytest.mark.parametrize(
    ("line", "words"),
    [("Paris", ("2 columns",)), ("Paris NNP B-NP X-LOC", ("'X-LOC'",)), ("Paris NNP B-NP B-", ("'B-'",))],
)
def test_conll_malformed_line(tmp_path: Path, line: str, words: tuple[str, ...]) -> None:
    path = write(tmp_path, "bad.txt", f"-DOCSTART- -X- -X- O\n\nIn IN B-PP O\n{line}\n")
    with pytest.raises(ReaderError) as excinfo:
        read_documents(path, "conll2003")
    assert_error(excinfo, path, 4, *words)


# ---- SpERT (CoNLL04) -------------------------------------------------------------------------

SPERT_ITEMS = [
    {
        "tokens": ["Zoë", "Dubois", "works", "for", "Renault", "in", "Boulogne-Billancourt", "."],
        "entities": [{"start": 0, "end": 2, "type": "Peop"}, {"start": 4, "end": 5, "type": "Org"},
                     {"start": 6, "end": 7, "type": "Loc"}],
        "relations": [{"head": 0, "tail": 1, "type": "Work_For"}, {"head": 1, "tail": 2, "type": "OrgBased_In"}],
        "orig_id": 5121,
    },
    {"tokens": ["عبد", "الله", "spoke", "."], "entities": [{"start": 0, "end": 2, "type": "Peop"}], "relations": []},
]


def spert_text(items: list[object]) -> str:
    """One item per line: item k starts on line k + 2."""
    return "[\n" + ",\n".join(json.dumps(item, ensure_ascii=False) for item in items) + "\n]\n"


def test_spert_good_file(tmp_path: Path) -> None:
    path = write(tmp_path, "conll04.json", json.dumps(SPERT_ITEMS, indent=2, ensure_ascii=False))
    first, second = read_documents(path, "spert")
    assert first.id == "5121" and second.id == "1"
    assert first.text == "Zoë Dubois works for Renault in Boulogne-Billancourt ."
    assert mentions(first) == [("Zoë Dubois", "Peop"), ("Renault", "Org"), ("Boulogne-Billancourt", "Loc")]
    assert first.relations == [RelationMention(0, 1, "Work_For"), RelationMention(1, 2, "OrgBased_In")]
    assert first.sentences == [(0, len(first.text))] and len(first.tokens) == 8
    assert mentions(second) == [("عبد الله", "Peop")]


def test_spert_empty_list(tmp_path: Path) -> None:
    assert read_documents(write(tmp_path, "e.json", " [ ] \n"), "spert") == []


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ({"tokens": ["a", "b"], "entities": [{"start": 0, "end": 9, "type": "Loc"}], "relations": []},
         ("item 2: entity 0 ends at token 9 but the sentence has 2 tokens",)),
        ({"tokens": ["a", "b"], "entities": [{"start": 1, "end": 1, "type": "Loc"}], "relations": []},
         ("item 2: entity 0", "empty")),
        ({"tokens": ["a"], "entities": [{"start": 0, "end": 1, "type": "Loc"}],
          "relations": [{"head": 0, "tail": 3, "type": "Kill"}]},
         ("item 2: relation 0 tail is entity 3 but there are 1 entities",)),
        ({"tokens": ["a"], "entities": [{"start": "0", "end": 1, "type": "Loc"}], "relations": []},
         ("item 2: entity 0 start must be an integer",)),
        ({"entities": [], "relations": []}, ("item 2: the item has no field 'tokens'",)),
        ({"tokens": ["a", ""], "entities": [], "relations": []}, ("item 2: token 1",)),
        ({"tokens": ["a"], "entities": {}, "relations": []}, ("item 2: 'entities' must be a list",)),
        (["a"], ("item 2: the item must be an object",)),
    ],
)
def test_spert_malformed_item_names_its_line(tmp_path: Path, bad: object, words: tuple[str, ...]) -> None:
    path = write(tmp_path, "bad.json", spert_text([*SPERT_ITEMS, bad]))
    with pytest.raises(ReaderError) as excinfo:
        read_documents(path, "spert")
    assert_error(excinfo, path, 4, *words)


def test_spert_line_of_a_multiline_item(tmp_path: Path) -> None:
    items = [*SPERT_ITEMS, {"tokens": ["x"], "entities": [{"start": 0, "end": 2, "type": "Loc"}], "relations": []}]
    text = json.dumps(items, indent=1)
    path = write(tmp_path, "indented.json", text)
    start_line = text[: text.index('{\n  "tokens": [\n   "x"')].count("\n") + 1
    with pytest.raises(ReaderError) as excinfo:
        read_documents(path, "spert")
    assert_error(excinfo, path, start_line, "item 2: entity 0 ends at token 2")


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ('{"tokens": []}', 1, ("expected a JSON list",)),
        ('[\n{"tokens": ["a"],\n "entities": [}\n]', 3, ("invalid JSON",)),
        ('[\n{"tokens": ["a"], "entities": [], "relations": []}\n{"tokens": ["b"]}\n]', 3, ("expected ',' or ']'",)),
        ('[\n{"tokens": ["a"], "entities": [], "relations": []},\n]', 3, ("trailing ','",)),
        ('[\n{"tokens": ["a"], "entities": [], "relations": []}\n]\n[]', 4, ("unexpected data",)),
        ('[\n{"tokens": ["a"], "entities": [], "relations": []}', 2, ("end of file",)),
    ],
)
def test_spert_malformed_json(tmp_path: Path, text: str, line: int, words: tuple[str, ...]) -> None:
    path = write(tmp_path, "bad.json", text)
    with pytest.raises(ReaderError) as excinfo:
        read_documents(path, "spert")
    assert_error(excinfo, path, line, *words)


# ---- CrossRE ---------------------------------------------------------------------------------

CROSSRE_LINES = [
    {"doc_key": "news-test-1", "sentence": ["SOCCER", "-", "JAPAN", "GET", "WIN", ",", "CHINA", "IN", "DEFEAT", "."],
     "ner": [[2, 2, "country"], [6, 6, "country"]], "relations": [[2, 2, 6, 6, "win-defeat", "", False, False]]},
    {"doc_key": "news-test-2", "sentence": ["Hassan", "Nasrallah", "met", "Zoë", "Lefèvre", "in", "Beirut"],
     "ner": [[0, 1, "person"], [3, 4, "person"], [6, 6, "location"]],
     "relations": [[0, 1, 6, 6, "physical", "", False, False], [3, 4, 0, 1, "related-to", "met", True, False]]},
]


def crossre_text(lines: list[object]) -> str:
    """Line 2 is blank: record k > 0 sits on line k + 2."""
    texts = [json.dumps(line, ensure_ascii=False) for line in lines]
    return "\n".join([texts[0], "", *texts[1:]]) + "\n"


def test_crossre_good_file(tmp_path: Path) -> None:
    path = write(tmp_path, "news-test.json", crossre_text(CROSSRE_LINES))
    first, second = read_documents(path, "crossre")
    assert (first.id, second.id) == ("news-test-1", "news-test-2")
    assert mentions(first) == [("JAPAN", "country"), ("CHINA", "country")]
    assert first.relations == [RelationMention(0, 1, "win-defeat")]
    assert mentions(second) == [("Hassan Nasrallah", "person"), ("Zoë Lefèvre", "person"), ("Beirut", "location")]
    assert second.relations == [RelationMention(0, 2, "physical"), RelationMention(1, 0, "related-to")]


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ({**CROSSRE_LINES[0], "relations": [[2, 2, 5, 6, "role", "", False, False]]},
         ("relation 0 tail [5, 6] is not an annotated entity",)),
        ({**CROSSRE_LINES[0], "ner": [[2, 2, "country"], [9, 10, "country"]]},
         ("ner 1 [9, 10] lies outside the sentence (10 tokens)",)),
        ({**CROSSRE_LINES[0], "ner": [[2, "country"]]}, ("ner 0 must be [first, last, type]",)),
        ({**CROSSRE_LINES[0], "relations": [[2, 2, 6, 6]]}, ("relation 0 must start with",)),
        ({k: v for k, v in CROSSRE_LINES[0].items() if k != "doc_key"}, ("no field 'doc_key'",)),
        ({**CROSSRE_LINES[0], "sentence": "SOCCER JAPAN"}, ("'sentence'", "list of strings")),
    ],
)
def test_crossre_malformed_line(tmp_path: Path, bad: object, words: tuple[str, ...]) -> None:
    path = write(tmp_path, "bad.json", crossre_text([*CROSSRE_LINES, bad]))
    with pytest.raises(ReaderError) as excinfo:
        read_documents(path, "crossre")
    assert_error(excinfo, path, 4, *words)


def test_crossre_invalid_json(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.json", crossre_text(CROSSRE_LINES) + '{"doc_key": "x",\n')
    with pytest.raises(ReaderError) as excinfo:
        read_documents(path, "crossre")
    assert_error(excinfo, path, 4, "invalid JSON")


# ---- project JSON lines ----------------------------------------------------------------------

def test_jsonl_reads_hand_written_lines(tmp_path: Path) -> None:
    text = "Mohammad Javad Zarif met José Martí in Doha."
    lines = [
        {"id": "a1", "text": text,
         "entities": [{"start": 0, "end": 20, "label": "PER", "text": "Mohammad Javad Zarif"},
                      {"start": 25, "end": 35, "label": "PER"}, {"start": 39, "end": 43, "label": "LOC"}],
         "relations": [{"head": 0, "tail": 2, "label": "located_in"}], "sentences": [[0, 44]]},
        {"id": "raw", "text": "وزير الخارجية"},
    ]
    path = write(tmp_path, "docs.jsonl", "\n".join(json.dumps(x, ensure_ascii=False) for x in lines) + "\n\n")
    doc, raw = read_documents(path, "jsonl")
    assert mentions(doc) == [("Mohammad Javad Zarif", "PER"), ("José Martí", "PER"), ("Doha", "LOC")]
    assert doc.relations == [RelationMention(0, 2, "located_in")] and doc.sentences == [(0, 44)]
    assert raw == Document(id="raw", text="وزير الخارجية")


def test_jsonl_round_trip(tmp_path: Path) -> None:
    conll_path = write(tmp_path, "c.txt", conll("-DOCSTART-", "José/B-PER Müller/I-PER ./O", "Doha/B-LOC"))
    spert_path = write(tmp_path, "s.json", json.dumps(SPERT_ITEMS, ensure_ascii=False))
    docs = [
        *read_documents(conll_path, "conll2003"),
        *read_documents(spert_path, "spert"),
        Document(id="raw", text="Line one.\n\u2028Ünïcödé line with \"quotes\"", entities=[Span(0, 4, "X")]),
    ]
    out = tmp_path / "out.jsonl"
    write_jsonl(docs, out)
    assert read_documents(out, "jsonl") == docs
    assert len(out.read_text(encoding="utf-8").split("\n")) == len(docs) + 1


@pytest.mark.parametrize(
    ("bad", "words"),
    [
        ({"id": "x", "text": "Doha", "entities": [{"start": 0, "end": 4, "label": "LOC", "text": "Dubai"}]},
         ("entity 0 text 'Dubai' differs from text[0:4] 'Doha'",)),
        ({"id": "x", "text": "Doha", "entities": [{"start": 0, "end": 5, "label": "LOC"}]},
         ("entity 0 [0, 5)", "outside the text (length 4)")),
        ({"id": "x", "text": "Doha", "entities": [{"start": 0, "end": 4, "label": "LOC"}],
          "relations": [{"head": 0, "tail": 1, "label": "r"}]}, ("relation 0 tail is entity 1",)),
        ({"id": "x", "text": "Doha", "sentences": [[0, 9]]}, ("sentence 0 [0, 9]",)),
        ({"id": "x", "text": "Doha", "sentences": [0, 4]}, ("sentence 0 must be a list",)),
        ({"id": "x"}, ("no field 'text'",)),
        ({"id": 3, "text": "Doha"}, ("id must be a non-empty string",)),
        ({"id": "x", "text": "Doha", "entities": [{"start": 0, "end": 4}]}, ("entity 0 has no field 'label'",)),
    ],
)
def test_jsonl_malformed_line(tmp_path: Path, bad: object, words: tuple[str, ...]) -> None:
    good = json.dumps({"id": "ok", "text": "fine"})
    path = write(tmp_path, "bad.jsonl", f"{good}\n\n{good}\n{json.dumps(bad)}\n{good}\n")
    with pytest.raises(ReaderError) as excinfo:
        read_documents(path, "jsonl")
    assert_error(excinfo, path, 4, *words)


def test_jsonl_invalid_json(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.jsonl", '{"id": "ok", "text": "fine"}\n{"id": "x", "text": }\n')
    with pytest.raises(ReaderError) as excinfo:
        read_documents(path, "jsonl")
    assert_error(excinfo, path, 2, "invalid JSON")


# ---- the real corpora ------------------------------------------------------------------------

@pytest.mark.skipif(not DATA.is_dir(), reason=f"shared corpora not present at {DATA}")
def test_real_corpora_match_the_data_readme() -> None:
    conll_docs = read_documents(DATA / "conll2003" / "test.txt", "conll2003")
    assert (len(conll_docs), sum(len(d.entities) for d in conll_docs)) == (231, 5648)
    assert sum(len(d.sentences) for d in conll_docs) == 3453
    conll04 = read_documents(DATA / "conll04" / "test.json", "spert")
    assert (len(conll04), sum(len(d.entities) for d in conll04), sum(len(d.relations) for d in conll04)) == (288, 1079, 422)
    crossre = read_documents(DATA / "crossre_news" / "news-test.json", "crossre")
    assert (len(crossre), sum(len(d.entities) for d in crossre), sum(len(d.relations) for d in crossre)) == (400, 856, 396)


# ---- raw text (no annotations) ---------------------------------------------------------------

def test_text_folder_reads_articles_with_sentences_and_names_unreadable_files(tmp_path: Path, capsys) -> None:
    (tmp_path / "news" / "sport").mkdir(parents=True)
    write(tmp_path, "news/sport/002.txt", "Zoë won in Doha. Mr. Smith lost.\n")
    write(tmp_path, "news/001.txt", "A headline\nThe body.")
    write(tmp_path, "news/notes.md", "not an article")
    write(tmp_path, "news/bad.txt", b"caf\xe9")
    (tmp_path / "news" / "folder.txt").mkdir()  # a folder named like an article is not one
    docs = read_documents(tmp_path / "news", "text")
    assert [d.id for d in docs] == ["001.txt", "sport/002.txt"]
    assert [[d.text[s:e] for s, e in d.sentences] for d in docs] == [["A headline", "The body."],
                                                                       ["Zoë won in Doha.", "Mr. Smith lost."]]
    assert all(not d.entities for d in docs)
    assert "bad.txt:1: invalid UTF-8 byte 0xe9: file left out" in capsys.readouterr().err
    assert [d.id for d in read_documents(tmp_path / "news" / "001.txt", "text")] == ["001.txt"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="empty: a folder without readable .txt files"):
        read_documents(tmp_path / "empty", "text")
