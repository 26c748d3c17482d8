"""Checkpoints of the training loop: exact round trip, atomic replacement, clear refusals."""
from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from training.checkpoint import STOP_AFTER_ENV, CheckpointError, Checkpoints, LoopState, TrainingInterrupted


def setup(seed: int):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 3))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0 / (1 + step))
    return model, optimizer, scheduler


def train_steps(model, optimizer, scheduler, n: int) -> None:
    for _ in range(n):
        loss = model(torch.randn(5, 4)).pow(2).mean()
        loss.backward()
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad()


def test_round_trip_continues_exactly(tmp_path: Path):
    model, optimizer, scheduler = setup(0)
    train_steps(model, optimizer, scheduler, 3)
    checkpoints = Checkpoints(tmp_path / "ck", every=1, fingerprint="abc")
    state = LoopState(epoch=2, batches=1, step=3, history=[{"epoch": 1, "step": 2, "dev_f1": 0.5}], best=0.5)
    best = {k: v.clone() for k, v in model.state_dict().items()}
    random.seed(1), np.random.seed(1)
    checkpoints.save("ner", state, model, best, optimizer, scheduler)
    train_steps(model, optimizer, scheduler, 2)
    expected = [p.detach().clone() for p in model.parameters()], random.random(), np.random.rand()

    other, other_optimizer, other_scheduler = setup(99)  # different weights and RNG
    restored_state, restored_best, rng = checkpoints.load("ner", other, other_optimizer, other_scheduler)
    assert restored_state == state and all(torch.equal(best[k], restored_best[k]) for k in best)
    from training.checkpoint import set_rng_states

    set_rng_states(rng)
    train_steps(other, other_optimizer, other_scheduler, 2)
    assert all(torch.equal(a, b) for a, b in zip(expected[0], other.parameters())), "bit-identical continuation"
    assert (random.random(), np.random.rand()) == expected[1:]


def test_only_the_latest_complete_checkpoint_counts(tmp_path: Path):
    model, optimizer, scheduler = setup(0)
    checkpoints = Checkpoints(tmp_path / "ck", every=1, fingerprint="abc")
    best = {k: v.clone() for k, v in model.state_dict().items()}
    checkpoints.save("ner", LoopState(step=1, batches=1, best=0.5), model, best, optimizer, scheduler)
    train_steps(model, optimizer, scheduler, 1)  # the best weights stay those of step 1: shared, not rewritten
    checkpoints.save("ner", LoopState(step=2, batches=2, best=0.5), model, best, optimizer, scheduler)
    stage = tmp_path / "ck" / "ner"
    assert sorted(p.name for p in stage.iterdir()) == ["epoch001-batch000002", "latest.json"], "older ones removed"
    (stage / ".epoch001-batch000003.partial").mkdir()  # a save that died half-way
    state, restored_best, _ = checkpoints.load("ner", *setup(0))
    assert state.step == 2 and all(torch.equal(best[k], restored_best[k]) for k in best)
    assert checkpoints.load("relations", *setup(0)) is None and checkpoints.exists()
    checkpoints.clear()
    assert not (tmp_path / "ck").exists()


def test_another_config_or_damaged_files_are_refused(tmp_path: Path):
    model, optimizer, scheduler = setup(0)
    Checkpoints(tmp_path / "ck", every=1, fingerprint="abc").save("ner", LoopState(), model, None, optimizer, scheduler)
    with pytest.raises(CheckpointError, match="written for another config or data .*train without --resume"):
        Checkpoints(tmp_path / "ck", every=1, fingerprint="xyz").load("ner", model, optimizer, scheduler)
    folder = tmp_path / "ck" / "ner" / json.loads((tmp_path / "ck" / "ner" / "latest.json").read_text())["checkpoint"]
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(CheckpointError, match=r"ck/ner: cannot resume from the latest checkpoint"):
        Checkpoints(tmp_path / "ck", every=1, fingerprint="abc").load("ner", model, optimizer, scheduler)


def test_stop_hook_counts_steps_of_this_process(tmp_path: Path, monkeypatch):
    monkeypatch.setenv(STOP_AFTER_ENV, "3")
    checkpoints = Checkpoints(tmp_path, every=5, fingerprint="abc")
    checkpoints.step_taken(), checkpoints.step_taken()
    with pytest.raises(TrainingInterrupted, match="stopped after 3 steps"):
        checkpoints.step_taken()
    with pytest.raises(ValueError, match="at least 1"):
        Checkpoints(tmp_path, every=0, fingerprint="abc")
