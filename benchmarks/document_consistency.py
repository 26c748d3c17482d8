"""Does document-level label consistency help NER on whole articles? (Issue 5: a post-processing
step many CoNLL-2003 systems use, measured here before building it into the product.)

A name is often repeated in an article, and a model reading each mention in its own context may
type or bound the repeats differently. Two ways to make them agree, after the model and before
the default output (calibrated scores, decision floor), each scored as `python -m training
evaluate --level article` scores (the "model alone" row reproduces its figure):
- vote: mentions with the same surface text take the type with the most tag probability summed
  over all their words (boundaries unchanged);
- smooth LAMBDA: for each name the model found, the tag probabilities of every occurrence of its
  word sequence in the article are mixed with their mean over the occurrences, with weight
  LAMBDA, then decoded again (so a repeat the model missed can be found, and types and
  boundaries pulled together).

    .venv/bin/python benchmarks/document_consistency.py --model RUN [--out FILE]
"""
from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference.extractor import NewsExtractor, keep_confident  # noqa: E402
from inference.ner import NerTagger, span_words  # noqa: E402
from inference.schema import Article, Entity  # noqa: E402
from inference.windows import TokenizedText, tokenize  # noqa: E402
from training.evaluate import entity_scores, provenance, tag_sequences, write_json  # noqa: E402
from training.readers import read_documents  # noqa: E402

SMOOTHING = (0.3, 0.5, 1.0)


def word_slices(toks: TokenizedText, entities: list[Entity]) -> list[slice]:
    """The words each entity spans (`span_words`)."""
    starts = [s for s, _ in toks.words]
    return [slice(r.start, r.stop) for r in (span_words(toks.words, starts, e.start, e.end) for e in entities)]


def vote(tagger: NerTagger, entities: list[Entity], toks: TokenizedText, probs: np.ndarray) -> list[Entity]:
    """Mentions sharing a surface text relabelled to the type with the most summed probability."""
    columns = defaultdict(list)
    for i, label in tagger.id2label.items():
        if label != "O":
            columns[label[2:]].append(i)
    groups = defaultdict(list)
    for e, words in zip(entities, word_slices(toks, entities)):
        groups[e.text].append((e, words))
    for same in groups.values():
        if len({e.label for e, _ in same}) > 1:
            mass = {t: sum(probs[words][:, cols].sum() for _, words in same) for t, cols in columns.items()}
            best = max(mass, key=mass.__getitem__)
            for e, _ in same:
                e.label = best
    return entities


def smooth(text: str, entities: list[Entity], toks: TokenizedText, probs: np.ndarray, weight: float) -> np.ndarray:
    """Each found name's occurrences (same word sequence) mixed towards their mean probabilities;
    longer names last, so they win where occurrences overlap."""
    words = [text[s:e] for s, e in toks.words]
    at = defaultdict(list)
    for k, w in enumerate(words):
        at[w].append(k)
    names = {tuple(words[span]) for span in word_slices(toks, entities)}
    mixed = probs.copy()
    for name in sorted(names, key=len):
        occurrences = [k for k in at[name[0]] if tuple(words[k : k + len(name)]) == name]
        if len(occurrences) < 2:
            continue
        mean = np.mean([probs[k : k + len(name)] for k in occurrences], axis=0)
        for k in occurrences:
            mixed[k : k + len(name)] = (1 - weight) * probs[k : k + len(name)] + weight * mean
    return mixed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="run directory")
    parser.add_argument("--out", type=Path, help="write the table as JSON")
    args = parser.parse_args()
    extractor = NewsExtractor.from_pretrained(args.model, relations=False)
    tagger, floor = extractor.tagger, extractor.score_floor(None)
    data = extractor.settings["config"]["data"]
    variants = ["model alone", "vote"] + [f"smooth {w}" for w in SMOOTHING]
    result = {"model": str(args.model), "encoder": extractor.settings["encoder"], "level": "article", **provenance(), "f1": {}}
    for split in ("dev", "test"):
        documents = read_documents(Path(data["root"]) / data[split], data["format"])
        tokenized = tokenize(tagger.tokenizer, [d.text for d in documents])
        probs = tagger.word_probs(tokenized)
        for variant in variants:
            predicted = []
            for doc, toks, p in zip(documents, tokenized, probs):
                entities = tagger.decode(doc.text, toks, p)
                if variant == "vote":
                    entities = vote(tagger, entities, toks, p)
                elif variant.startswith("smooth"):
                    entities = tagger.decode(doc.text, toks, smooth(doc.text, entities, toks, p, float(variant.split()[1])))
                article = extractor.score(Article(doc.id, doc.text, entities, []))
                predicted.append((keep_confident(article, floor, keep_related=True) if floor else article).entities)
            scores = entity_scores(*tag_sequences(extractor, documents, predicted))
            result["f1"].setdefault(variant, {})[split] = {
                "micro": round(scores["micro"]["f1"], 4), **{t: round(r["f1"], 4) for t, r in scores["per_type"].items()}
            }
            print(f"{split:<5} {variant:<12} F1 {scores['micro']['f1']:.4f}", flush=True)
    if args.out:
        write_json(result, args.out)


if __name__ == "__main__":
    main()
