"""The NER training loss (training/tagger_loss.py): gold cross-entropy with label smoothing,
mixed with a teacher's distributions."""
from __future__ import annotations

from types import SimpleNamespace

import torch

from training.tagger_loss import TaggerLoss


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
        loss = TaggerLoss(_Logits(logits), weight)(teacher=teacher, labels=labels, input_ids=labels).loss
        torch.testing.assert_close(loss, (1 - weight) * hard + weight * soft)


def test_label_smoothing_spreads_part_of_each_gold_tag_over_all_tags():
    logits = torch.randn(1, 3, 4)
    labels = torch.tensor([[2, -100, 0]])
    log_q = logits.log_softmax(-1)[0, [0, 2]]
    gold = torch.stack([log_q[0, 2], log_q[1, 0]])
    for eps in (0.0, 0.1, 0.3):
        expected = -((1 - eps) * gold + eps * log_q.mean(-1)).mean()
        loss = TaggerLoss(_Logits(logits), label_smoothing=eps)(labels=labels, input_ids=labels).loss
        torch.testing.assert_close(loss, expected)
    with_teacher = TaggerLoss(_Logits(logits), 0.5, 0.1)(labels=labels, teacher=torch.zeros(1, 3, 4), input_ids=labels).loss
    torch.testing.assert_close(with_teacher, 0.5 * -((0.9 * gold + 0.1 * log_q.mean(-1)).mean()))
