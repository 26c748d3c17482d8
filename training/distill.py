"""Knowledge distillation for the NER model: a trained run (the teacher, e.g. MPNet) lends its
word-tag distributions to the model being trained (the student, e.g. MiniLM).

The student's loss mixes cross-entropy on the gold tags with cross-entropy on the teacher's
calibrated tag distributions, word by word (first subwords only, as for the gold tags). The
teacher also labels extra unannotated texts (`ner.distill.unlabeled`), where only its
distributions count: that is how a small encoder learns from a large one beyond the annotated
sentences. Teacher and student may use different tokenizers; their words are matched by
character span, and a word the two split differently gets no teacher target.
"""
from __future__ import annotations

import hashlib
import io
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import DataCollatorForTokenClassification, PreTrainedTokenizerFast

from inference.extractor import NewsExtractor
from inference.ner import softmax
from inference.schema import Document, sentence_documents
from inference.windows import tokenize

from .checkpoint import fingerprint, write_atomically
from .config import Config, DistillConfig
from .corpora import DataMissing
from .readers import read_documents


def unlabeled_documents(config: Config) -> list[Document]:
    """The extra texts of `ner.distill.unlabeled`: a fixed random sample of the corpus's
    sentences (the same for every seed, so that seeds differ only in training), annotations dropped."""
    distill = config.ner.distill
    if distill is None or distill.unlabeled is None:
        return []
    path = Path(config.data.root) / distill.unlabeled
    if not path.exists():
        raise DataMissing(f"ner.distill.unlabeled: no such file or folder {path} (read under data.root {config.data.root})")
    sentences = [d for d in sentence_documents(read_documents(path, distill.unlabeled_format)) if d.text.strip()]
    chosen = random.Random(0).sample(sentences, min(distill.unlabeled_sentences, len(sentences)))
    return [Document(id=d.id, text=d.text, entities=[], relations=[]) for d in chosen]


def teacher_word_probs(
    distill: DistillConfig, labels: list[str], student: PreTrainedTokenizerFast, documents: list[Document], device: str
) -> list[np.ndarray]:
    """Per document, a (student words x labels) array of the teacher's calibrated tag
    probabilities; all-zero rows for words the teacher tokenized differently."""
    teacher = NewsExtractor.from_pretrained(distill.teacher, device=device, relations=False).tagger
    teacher_labels = [teacher.id2label[i] for i in range(len(teacher.id2label))]
    if teacher_labels != labels:
        raise ValueError(
            f"ner.distill.teacher {distill.teacher}: its NER labels {teacher_labels} differ from this corpus's {labels}"
        )
    texts = [d.text for d in documents]
    ours = tokenize(student, texts)
    theirs = tokenize(teacher.tokenizer, texts)
    out = []
    for mine, toks, logits in zip(ours, theirs, _cached_word_logits(Path(distill.teacher), teacher, theirs, texts)):
        probs = softmax(logits / teacher.temperature)
        row_of = {span: w for w, span in enumerate(toks.words)}
        aligned = np.zeros((len(mine.words), len(labels)), dtype=np.float32)
        for w, span in enumerate(mine.words):
            if span in row_of:
                aligned[w] = probs[row_of[span]]
        out.append(aligned)
    return out


def _cached_word_logits(teacher_dir: Path, teacher: Any, tokenized: list[Any], texts: list[str]) -> list[np.ndarray]:
    """The teacher's word logits for `texts`, kept in `TEACHER/distill-cache/`: every seed and
    refit of a student asks the same teacher about the same texts, and on a CPU an MPNet teacher
    takes minutes per corpus. The key hashes the teacher's weights and the texts, so a retrained
    teacher or other texts never read a stale entry."""
    weights = hashlib.sha256()
    for name, tensor in sorted(teacher.model.state_dict().items()):
        weights.update(name.encode("utf-8"))
        weights.update(tensor.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    path = teacher_dir / "distill-cache" / f"{fingerprint(weights.hexdigest(), texts)}.npz"
    if path.is_file():
        print(f"teacher word logits read from {path}")
        with np.load(path) as stored:
            return [stored[f"t{i}"] for i in range(len(texts))]
    logits = [x.numpy() for x in teacher.word_logits(tokenized)]
    stored = io.BytesIO()
    np.savez(stored, **{f"t{i}": x for i, x in enumerate(logits)})
    try:
        path.parent.mkdir(exist_ok=True)
        write_atomically(path, stored.getvalue())  # a killed run leaves no half-written entry behind
    except OSError as err:  # a read-only teacher directory costs only the reuse
        print(f"warning: teacher word logits not cached in {path.parent}: {err}", file=sys.stderr)
    return logits


class DistillationCollator:
    """Pads NER features as usual and their `teacher` rows (token x label) with zeros."""

    def __init__(self, tokenizer: PreTrainedTokenizerFast) -> None:
        self.base = DataCollatorForTokenClassification(tokenizer)

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        teacher = [r["teacher"] for r in rows]
        batch = self.base([{k: v for k, v in r.items() if k != "teacher"} for r in rows])
        length, classes = batch["input_ids"].shape[1], len(teacher[0][0])
        padded = torch.zeros(len(rows), length, classes)
        for i, t in enumerate(teacher):
            padded[i, : len(t)] = torch.tensor(t)
        batch["teacher"] = padded
        return batch


class DistilledTagger(torch.nn.Module):
    """Wraps a token-classification model so that its loss is (1 - weight) x gold cross-entropy
    + weight x cross-entropy against the teacher's distributions (positions without either are skipped)."""

    def __init__(self, model: torch.nn.Module, weight: float) -> None:
        super().__init__()
        self.model = model
        self.weight = weight

    def forward(self, teacher: torch.Tensor, labels: torch.Tensor, **inputs: torch.Tensor) -> Any:
        out = self.model(**inputs)
        log_q = torch.log_softmax(out.logits.float(), -1)
        taught = teacher.sum(-1) > 0
        gold = labels != -100
        zero = log_q.new_zeros(())
        soft = -(teacher[taught] * log_q[taught]).sum(-1).mean() if taught.any() else zero
        hard = torch.nn.functional.nll_loss(log_q[gold], labels[gold]) if gold.any() else zero
        out.loss = (1 - self.weight) * hard + self.weight * soft
        return out
