"""Distillation of the NER model from a teacher run: the loss, the word alignment between
tokenizers, and a few-step training with unannotated texts through the command line."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from inference import NewsExtractor
from inference.ner import NerTagger, bio_labels
from inference.schema import Document
from training.cli import main as training_main
from training.config import DistillConfig
from training.distill import DistilledTagger, teacher_word_probs

LABELS = bio_labels(["Loc", "Org", "Peop"])  # the tiny corpus's types


class _Logits(torch.nn.Module):
    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits

    def forward(self, **inputs):
        return SimpleNamespace(logits=self.logits, loss=None)


def test_distilled_loss_mixes_gold_and_teacher_cross_entropy():
    logits = torch.randn(2, 4, 3)
    labels = torch.tensor([[-100, 1, 2, -100], [-100, -100, -100, -100]])  # second row: an unannotated text
    teacher = torch.zeros(2, 4, 3)
    teacher[0, 1] = torch.tensor([0.2, 0.7, 0.1])
    teacher[1, 2] = torch.tensor([0.5, 0.5, 0.0])
    log_q = logits.log_softmax(-1)
    hard = -(log_q[0, 1, 1] + log_q[0, 2, 2]) / 2
    soft = -((teacher[0, 1] * log_q[0, 1]).sum() + (teacher[1, 2] * log_q[1, 2]).sum()) / 2
    for weight in (0.0, 0.3, 1.0):
        loss = DistilledTagger(_Logits(logits), weight)(teacher=teacher, labels=labels, input_ids=labels).loss
        torch.testing.assert_close(loss, (1 - weight) * hard + weight * soft)


def test_teacher_probabilities_are_aligned_to_the_student_words(tiny_run: Path, tokenizer):
    docs = [Document("d", "John Smith works for Acme Corp in Boston.", [], [])]
    (probs,) = teacher_word_probs(DistillConfig(teacher=str(tiny_run)), LABELS, tokenizer, docs, "cpu")
    assert probs.shape == (9, len(LABELS))  # 8 words and the full stop
    np.testing.assert_allclose(probs.sum(-1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="its NER labels .* differ from this corpus's"):
        teacher_word_probs(DistillConfig(teacher=str(tiny_run)), bio_labels(["PER"]), tokenizer, docs, "cpu")


def test_teacher_logits_are_cached_in_the_teacher_run(tiny_run: Path, tokenizer, tmp_path: Path, monkeypatch):
    teacher = tmp_path / "teacher"
    shutil.copytree(tiny_run, teacher, ignore=shutil.ignore_patterns("distill-cache"))  # other tests fill its cache
    docs = [Document("d", "Mary Jones met Acme Corp in Paris.", [], [])]
    first = teacher_word_probs(DistillConfig(teacher=str(teacher)), LABELS, tokenizer, docs, "cpu")
    (entry,) = (teacher / "distill-cache").iterdir()
    assert entry.suffix == ".npz" and ".partial" not in entry.name

    def no_teacher_pass(*args, **kwargs):
        raise AssertionError("the teacher ran although its logits for these texts are cached")

    monkeypatch.setattr(NerTagger, "word_logits", no_teacher_pass)
    again = teacher_word_probs(DistillConfig(teacher=str(teacher)), LABELS, tokenizer, docs, "cpu")
    np.testing.assert_array_equal(first[0], again[0])
    other = [Document("e", "Mary Jones left.", [], [])]  # other texts: no stale entry may answer them
    with pytest.raises(AssertionError, match="the teacher ran"):
        teacher_word_probs(DistillConfig(teacher=str(teacher)), LABELS, tokenizer, other, "cpu")


def test_training_with_a_teacher_and_unannotated_texts(tiny_run: Path, tiny_config: Path, tiny_data: Path, tmp_path: Path, capsys):
    out = tmp_path / "student"
    overrides = [
        f"ner.distill.teacher={tiny_run}",
        "ner.distill.unlabeled=tiny/test.json",
        "ner.distill.unlabeled_format=spert",
        "ner.distill.unlabeled_sentences=2",
        "relations=null",
    ]
    args = ["train", "--config", str(tiny_config), "--output", str(out)]
    assert training_main([*args, *[x for o in overrides for x in ("--set", o)]]) == 0
    settings = json.loads((out / "extractor.json").read_text())
    assert settings["config"]["ner"]["distill"]["unlabeled_sentences"] == 2
    assert NewsExtractor.from_pretrained(out, device="cpu").extract("John Smith lives in Paris.").text
    missing = [*args, "--set", f"ner.distill.teacher={tiny_run}", "--set", "ner.distill.unlabeled=tiny/nope.json"]
    assert training_main(missing) != 0
    assert "ner.distill.unlabeled: no such file" in capsys.readouterr().err


def test_an_ensemble_teaches_from_a_folder_of_raw_articles(tiny_run: Path, tiny_config: Path, tmp_path: Path, capsys):
    """The teacher may be an ensemble run, and the unannotated texts raw .txt articles (format text)."""
    shutil.copytree(tiny_run, tmp_path / "member", ignore=shutil.ignore_patterns("distill-cache"))
    teacher = tmp_path / "teacher"
    assert training_main(["ensemble", "--members", str(tiny_run), str(tmp_path / "member"), "--output", str(teacher)]) == 0
    texts = tmp_path / "articles"
    (texts / "world").mkdir(parents=True)
    (texts / "world" / "1.txt").write_text("John Smith flew to Paris. He met Acme Corp there.\n", encoding="utf-8")
    (texts / "2.txt").write_text("Mary Jones works in Boston.", encoding="utf-8")
    (texts / "latin1.txt").write_bytes("Prices rose by \xa35.".encode("latin-1"))
    out = tmp_path / "student"
    overrides = [f"ner.distill.teacher={teacher}", f"ner.distill.unlabeled={texts}", "ner.distill.unlabeled_format=text",
                 "ner.distill.unlabeled_sentences=3", "relations=null"]
    args = ["train", "--config", str(tiny_config), "--output", str(out)]
    assert training_main([*args, *[x for o in overrides for x in ("--set", o)]]) == 0
    assert "latin1.txt:1: invalid UTF-8 byte 0xa3: file left out" in capsys.readouterr().err
    assert len(list((teacher / "distill-cache").iterdir())) == 1  # the ensemble answered for the texts
    assert NewsExtractor.from_pretrained(out, device="cpu").extract("John Smith lives in Paris.").text
