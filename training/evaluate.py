"""Entity evaluation: seqeval (strict IOB2) on the corpus' own tokens, through the inference path.

Predictions come from `NewsExtractor.extract_many` on raw text, sentence by sentence or on whole
articles; gold and predicted character spans are turned into IOB2 tags of the corpus tokens
and scored with seqeval, micro-averaged over mentions.
"""
from __future__ import annotations

import datetime
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import torch
from seqeval.metrics import classification_report
from seqeval.scheme import IOB2

from inference.extractor import NewsExtractor
from inference.ner import word_tags
from inference.schema import Document, Entity
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
        gold.append(word_tags(words, [(e.start, e.end, e.label) for e in doc.entities]))
        pred.append(word_tags(words, [(e.start, e.end, e.label) for e in ents]))
    return gold, pred


def evaluate_entities(extractor: NewsExtractor, documents: list[Document], batch_size: int = 32) -> dict[str, Any]:
    """Entity scores of the extractor on documents, each fed as one raw text."""
    articles = extractor.extract_many([d.text for d in documents], batch_size=batch_size)
    gold, pred = tag_sequences(extractor, documents, [a.entities for a in articles])
    return entity_scores(gold, pred)


def format_table(scores: dict[str, Any], title: str) -> str:
    """A per-type precision/recall/F1 table for the terminal."""
    lines = [title, f"{'type':<12}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"]
    rows = sorted(scores["per_type"].items()) + [("micro", scores["micro"])]
    for name, r in rows:
        lines.append(f"{name:<12}{r['precision']:>10.4f}{r['recall']:>10.4f}{r['f1']:>10.4f}{r['support']:>10}")
    return "\n".join(lines)


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
    model_dir: Path, data: Path, data_format: str, documents: list[Document], levels: list[str], batch_size: int = 32
) -> dict[str, Any]:
    """The metrics JSON of a run on a corpus: the first level at top level, others under `levels`."""
    extractor = NewsExtractor.from_pretrained(model_dir)
    results = {}
    for level in levels:
        docs = [s for d in documents for s in d.sentence_documents()] if level == "sentence" else documents
        results[level] = evaluate_entities(extractor, docs, batch_size)
    first = levels[0]
    metrics = {
        "ner": results[first],
        "level": first,
        "data": str(data),
        "format": data_format,
        "model": str(model_dir),
        "encoder": extractor.settings["encoder"],
        "training": extractor.settings.get("training"),
        **provenance(),
    }
    if len(levels) > 1:
        metrics["levels"] = {lv: {"ner": results[lv]} for lv in levels}
    return metrics


def write_json(obj: Any, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
