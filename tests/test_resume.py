"""Durable training: a run killed mid-epoch continues with --resume to the very weights of a run
never interrupted, and a half-written run directory never loads."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference import NewsExtractor, RunDirectoryError
from training.checkpoint import STOP_AFTER_ENV, Checkpoints
from training.cli import main

WEIGHTS = ("ner/model.safetensors", "relations/model.safetensors", "relations/head.safetensors")


def test_killed_run_resumes_to_the_same_weights(tiny_run: Path, tiny_config: Path, tmp_path: Path, monkeypatch, capsys):
    output = tmp_path / "tiny"
    args = ["train", "--config", str(tiny_config), "--output", str(output), "--set", "checkpoint_steps=2"]
    # The tiny corpus makes 3 NER batches per epoch (2 epochs: steps 1-5 count, the last ends
    # training) and 3 relation batches per epoch: step 8 is relation step 3, mid-epoch, one step
    # after the checkpoint of relation step 2.
    monkeypatch.setenv(STOP_AFTER_ENV, "8")
    assert main(args) == 3
    assert "--resume" in capsys.readouterr().err
    assert not output.exists() and Checkpoints.for_run(output).is_dir()
    monkeypatch.delenv(STOP_AFTER_ENV)
    assert main([*args, "--resume"]) == 0
    out = capsys.readouterr().out
    assert "NER: resuming at epoch 3" in out and "relations: resuming at epoch 1, batch 2, step 2" in out
    for name in WEIGHTS:
        assert (output / name).read_bytes() == (tiny_run / name).read_bytes(), f"{name} differs after resuming"
    resumed, reference = (json.loads((d / "extractor.json").read_text()) for d in (output, tiny_run))
    assert resumed["calibration"] == reference["calibration"]
    for stage in ("ner", "relations"):
        assert resumed["training"][stage]["history"] == reference["training"][stage]["history"]
    assert not Checkpoints.for_run(output).exists(), "checkpoints go once the run is written"


def test_resume_without_a_checkpoint_says_so(tiny_config: Path, tmp_path: Path, capsys):
    output = tmp_path / "never-started"
    assert main(["train", "--config", str(tiny_config), "--output", str(output), "--resume"]) == 2
    assert f"no checkpoint in {Checkpoints.for_run(output)}" in capsys.readouterr().err
