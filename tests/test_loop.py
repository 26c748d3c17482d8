"""The training loop refuses a diverged loss, rolls back a collapse on dev (nothing found there
after a better epoch) once, and warns about a run that stays collapsed."""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
import torch
from accelerate import Accelerator
from datasets import Dataset

from training.checkpoint import STOP_AFTER_ENV, Checkpoints, TrainingInterrupted
from training.config import OptimConfig
from training.loop import FitResult, TrainingDiverged, fit, roll_back


class Scaled(torch.nn.Module):
    """A one-weight model whose loss is its weight times `factor` (NaN: a diverged run)."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(1))
        self.factor = factor

    def forward(self, x: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(loss=(self.weight * x).sum() * self.factor)


def train(hp: OptimConfig, scores: list[float], factor: float = 1.0, **options: Any) -> tuple[Scaled, FitResult, list[float]]:
    """Fit a Scaled model on 8 rows (2 steps an epoch at batch size 4), each dev scoring taking the
    next of `scores`; returns the model, the result and the weight seen at each dev scoring."""
    model, remaining, seen = Scaled(factor), iter(scores), []
    data = Dataset.from_list([{"input_ids": [1, 2, 3]} for _ in range(8)])
    result = fit(Accelerator(cpu=True), model, data, lambda rows: {"x": torch.ones(len(rows))}, hp, seed=1, desc="NER",
                 dev_score=lambda m: seen.append(m.weight.item()) or next(remaining), **options)
    return model, result, seen


def run(factor: float, dev_f1: float | list[float]) -> None:
    """Two epochs (or one per score in `dev_f1`), each scoring the next dev F1."""
    scores = dev_f1 if isinstance(dev_f1, list) else [dev_f1] * 2
    train(OptimConfig(epochs=len(scores), batch_size=4, learning_rate=0.1, patience=5), scores, factor)


def test_a_nan_loss_stops_training_with_where_and_why():
    with pytest.raises(TrainingDiverged, match=r"NER, epoch 1, step 1: the loss is nan; .*learning_rate 0.1"):
        run(float("nan"), dev_f1=0.5)


def test_a_model_that_never_scores_on_dev_is_reported(capsys: pytest.CaptureFixture[str]):
    run(1.0, dev_f1=0.0)
    assert "warning: NER: dev F1 was 0 after every epoch" in capsys.readouterr().err
    run(1.0, dev_f1=0.3)
    assert "warning" not in capsys.readouterr().err


def test_a_collapse_after_a_good_epoch_is_rolled_back_once_then_reported(capsys: pytest.CaptureFixture[str]):
    run(1.0, dev_f1=[0.85, 0.0, 0.0, 0.0])
    err = capsys.readouterr().err
    assert err.count("rolled back to the epoch-1 weights") == 1  # epoch 2; epoch 3 finds the rollback spent
    assert "warning: NER: dev F1 fell to 0 at epoch 2 after 0.8500 at epoch 1" in err
    assert "the epoch-1 model is kept" in err and "warmup_ratio 0.1" in err
    run(1.0, dev_f1=[0.85, 0.80, 0.90])  # a dip that is not a collapse
    assert "warning" not in capsys.readouterr().err


def test_a_refit_runs_every_epoch_scores_dev_after_each_and_keeps_the_last():
    hp = OptimConfig(epochs=3, batch_size=4, learning_rate=0.1, patience=1)
    # Falling, but never to 0: patience 1 does not stop a refit.
    model, result, calls = train(hp, [0.5, 0.4, 0.3], refit=True)
    assert len(calls) == 3 and calls[-1] == pytest.approx(model.weight.item())  # the last epoch's weights, kept
    assert [h["trained_dev_f1"] for h in result.history] == pytest.approx([0.5, 0.4, 0.3])
    assert all("dev_f1" not in h for h in result.history)  # dev is training data here: no dev score
    assert result.best_dev is None and result.trained_dev_f1 == pytest.approx(0.3)
    assert result.to_dict()["trained_dev_f1"] == pytest.approx(0.3)


@pytest.mark.parametrize("refit", [False, True])
def test_a_rolled_back_run_trains_on_from_its_best_weights_at_half_the_rate(refit: bool, capsys: pytest.CaptureFixture[str]):
    """A refit too: its dev F1 (dev is its training data) only detects the collapse."""
    hp = OptimConfig(epochs=3, batch_size=4, learning_rate=0.1, warmup_ratio=0.0, weight_decay=0.0, patience=1)
    model, result, (after_1, after_2, after_3) = train(hp, [0.85, 0.0, 0.9], refit=refit)
    assert "rolled back to the epoch-1 weights" in capsys.readouterr().err
    assert result.history[1]["rolled_back_to"] == 1  # patience 1 did not stop it
    assert (result.trained_dev_f1 if refit else result.best_dev) == pytest.approx(0.9)
    assert model.weight.item() == pytest.approx(after_3)  # the last epoch, the best one too, after the rollback
    # Epoch 3 starts again from epoch 1's weights, with smaller steps than epoch 2 took (halved, decaying rates).
    assert 0 < after_1 - after_3 < after_1 - after_2


def test_roll_back_restores_weights_clears_moments_and_halves_the_schedule():
    model = torch.nn.Linear(2, 1)
    best = {k: v.clone() for k, v in model.state_dict().items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    scheduler.step()
    assert optimizer.state and optimizer.param_groups[0]["lr"] == pytest.approx(0.05)
    roll_back(model, best, optimizer, scheduler)
    assert all(torch.equal(v, best[k]) for k, v in model.state_dict().items())
    assert not optimizer.state and optimizer.param_groups[0]["lr"] == pytest.approx(0.025)
    scheduler.step()
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.05 / 3)  # half of 0.1 / 3


def test_a_run_stopped_after_its_rollback_resumes_to_the_same_weights(tmp_path, monkeypatch, capsys):
    """The halved rates and cleared moments live in the checkpoint (scheduler, optimizer, loop state)."""
    hp = OptimConfig(epochs=3, batch_size=4, learning_rate=0.1, warmup_ratio=0.0, patience=1)
    whole, whole_result, _ = train(hp, [0.85, 0.0, 0.9])
    monkeypatch.setenv(STOP_AFTER_ENV, "5")  # step 5: the first step after the rollback
    with pytest.raises(TrainingInterrupted):
        train(hp, [0.85, 0.0], checkpoints=Checkpoints(tmp_path, every=1, fingerprint="f"))
    monkeypatch.delenv(STOP_AFTER_ENV)
    resumed, resumed_result, _ = train(hp, [0.9], checkpoints=Checkpoints(tmp_path, every=1, fingerprint="f"))
    assert resumed.weight.item() == whole.weight.item()
    assert resumed_result.history == whole_result.history and resumed_result.history[1]["rolled_back_to"] == 1
