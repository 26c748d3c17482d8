"""Ensembles of runs: several trained runs (seeds) that answer as one.

An ensemble run directory holds only `extractor.json` (a member's settings, the list of member
runs, and a calibration fitted for the ensemble) and `known_mentions.json`; the models stay in
the member runs. `MeanOfModels` stands in for one model: it calls each member alike and returns
as `logits` the log of the mean of their softmax outputs, so the taggers' own code (softmax,
temperature, Viterbi decoding, relation pairs) runs unchanged on the averaged probabilities.
Written by `python -m training ensemble`.
"""
from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

# Settings every member must share: the same inputs (tokenizer, windows, casing) and outputs.
SHARED_SETTINGS = ("encoder", "entity_labels", "window", "casing", "relations")


class MeanOfModels(torch.nn.Module):
    """Members called with the same inputs; `logits` = log of the mean of their probabilities."""

    def __init__(self, members: list[torch.nn.Module]) -> None:
        super().__init__()
        self.members = torch.nn.ModuleList(members)
        self.config = members[0].config if hasattr(members[0], "config") else None

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, **inputs: torch.Tensor) -> SimpleNamespace:
        probs = torch.stack([m(**inputs).logits.float().softmax(-1) for m in self.members]).mean(0)
        return SimpleNamespace(logits=probs.clamp_min(1e-12).log())


def member_dirs(ensemble_dir: Path, settings: dict[str, Any]) -> list[Path]:
    """The member run directories of an ensemble (stored relative to it)."""
    return [(ensemble_dir / m).resolve() for m in settings["members"]]


def mismatched_settings(first: dict[str, Any], other: dict[str, Any]) -> list[str]:
    """The shared settings in which a member differs from the first."""
    return [key for key in SHARED_SETTINGS if first.get(key) != other.get(key)]
