"""The NER training loss where the model's own plain cross-entropy is not enough: gold tags with
label smoothing (`ner.label_smoothing`), mixed with a teacher's tag distributions where the run
is distilled (`ner.distill`, training/distill.py)."""
from __future__ import annotations

from typing import Any

import torch


class TaggerLoss(torch.nn.Module):
    """Wraps a token-classification model so that its loss is (1 - teacher_weight) x gold
    cross-entropy (with `label_smoothing`) + teacher_weight x cross-entropy against the teacher's
    distributions. Positions without a gold tag (-100) or without a teacher row (all zeros) are
    skipped by the term that lacks them. The weights are the model's own."""

    def __init__(self, model: torch.nn.Module, teacher_weight: float = 0.0, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.model = model
        self.teacher_weight = teacher_weight
        self.label_smoothing = label_smoothing

    def forward(self, labels: torch.Tensor, teacher: torch.Tensor | None = None, **inputs: torch.Tensor) -> Any:
        out = self.model(**inputs)
        logits = out.logits.float()
        zero = logits.new_zeros(())
        gold = labels != -100
        hard = (
            torch.nn.functional.cross_entropy(logits[gold], labels[gold], label_smoothing=self.label_smoothing)
            if gold.any() else zero
        )
        soft = zero
        if teacher is not None:
            taught = teacher.sum(-1) > 0
            if taught.any():
                soft = -(teacher[taught] * torch.log_softmax(logits[taught], -1)).sum(-1).mean()
        out.loss = (1 - self.teacher_weight) * hard + self.teacher_weight * soft
        return out
