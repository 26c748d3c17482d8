"""The training loop refuses a diverged loss and warns about a run that collapsed on dev (finds
nothing there, from the start or after a better epoch)."""
from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from accelerate import Accelerator
from datasets import Dataset

from training.config import OptimConfig
from training.loop import TrainingDiverged, fit


class Scaled(torch.nn.Module):
    """A one-weight model whose loss is its weight times `factor` (NaN: a diverged run)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.factor = factor

    def forward(self, x: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(loss=(self.weight * x).sum() * self.factor)


def run(factor: float, dev_f1: float | list[float]) -> None:
    """Two epochs (or one per score in `dev_f1`), each scoring the next dev F1."""
    scores = dev_f1 if isinstance(dev_f1, list) else [dev_f1] * 2
    data = Dataset.from_list([{"input_ids": [1, 2, 3]} for _ in range(8)])
    collate = lambda rows: {"x": torch.ones(len(rows))}  # noqa: E731
    hp = OptimConfig(epochs=len(scores), batch_size=4, learning_rate=0.1, patience=5)
    remaining = iter(scores)
    fit(Accelerator(cpu=True), Scaled(factor), data, collate, hp, seed=1, desc="NER", dev_score=lambda m: next(remaining))


def test_a_nan_loss_stops_training_with_where_and_why():
    with pytest.raises(TrainingDiverged, match=r"NER, epoch 1, step 1: the loss is nan; .*learning_rate 0.1"):
        run(float("nan"), dev_f1=0.5)


def test_a_model_that_never_scores_on_dev_is_reported(capsys: pytest.CaptureFixture[str]):
    run(1.0, dev_f1=0.0)
    assert "warning: NER: dev F1 was 0 after every epoch" in capsys.readouterr().err
    run(1.0, dev_f1=0.3)
    assert "warning" not in capsys.readouterr().err


def test_a_collapse_after_a_good_epoch_is_reported(capsys: pytest.CaptureFixture[str]):
    run(1.0, dev_f1=[0.85, 0.0, 0.0])
    err = capsys.readouterr().err
    assert "warning: NER: dev F1 fell to 0 at epoch 2 after 0.8500 at epoch 1" in err
    assert "the epoch-1 model is kept" in err and "warmup_ratio 0.1" in err
    run(1.0, dev_f1=[0.85, 0.80, 0.90])  # a dip that is not a collapse
    assert "warning" not in capsys.readouterr().err


def test_a_refit_runs_every_epoch_and_scores_dev_once_at_the_end():
    calls: list[float] = []
    data = Dataset.from_list([{"input_ids": [1, 2, 3]} for _ in range(8)])
    hp = OptimConfig(epochs=3, batch_size=4, learning_rate=0.1, patience=1)
    model = Scaled(1.0)
    result = fit(Accelerator(cpu=True), model, data, lambda rows: {"x": torch.ones(len(rows))}, hp, seed=1, desc="NER",
                 dev_score=lambda m: calls.append(m.weight.item()) or 0.0, refit=True)
    assert len(calls) == 1 and calls[0] == pytest.approx(model.weight.item())  # the last epoch's weights, scored once
    assert [h["epoch"] for h in result.history] == [1, 2, 3] and all("dev_f1" not in h for h in result.history)
    assert result.best_dev is None and result.trained_dev_f1 == 0.0
    assert result.to_dict()["trained_dev_f1"] == 0.0
