"""Refit: train a config on train + dev for a final figure, as SpERT did for CoNLL04.

Once dev is training data it can no longer choose the epochs or fit the calibration, so both
come from a reference run: the same config trained on train alone. Each model trains for the
number of epochs at which the reference peaked on dev (no early stopping, the last epoch is
kept), and the reference's calibration (temperatures, score maps, thresholds, decision floors)
is copied, on the assumption that one recipe on a quarter more data gives a model calibrated
alike; the refit run's test ECE is the check.

With no dev score, a refit that failed (MPNet can collapse to tagging everything O) would go
unnoticed until test: so each model is scored on dev, its own training data, after every epoch
(training/loop.py): a collapse is rolled back as in any run, and a model that finds nothing there
at its end is not written (`check_refit`).
"""
from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from .config import Config, ConfigError, config_from_dict
from .loop import best_epoch

# Keys a refit may differ from its reference in: where runs go and how often they checkpoint.
FREE_KEYS = {"refit", "output", "checkpoint_steps", "mixed_precision"}
# Settings removed after they were measured not to pay (BENCHMARKS.md), with the value that left
# them off: a run trained before the removal with that value ran what the code now does.
RETIRED = {"ner": {"crf": False, "label_smoothing": 0.0, "layer_decay": None}}


class RefitFailed(ValueError):
    """A refit finds nothing on dev, which it trained on: its training collapsed."""


def check_refit(refit: str, part: str, trained_dev_f1: float, reference: dict[str, Any], warn: bool = True) -> None:
    """Raise RefitFailed when the refit's `part` ("ner" or "relations") scores F1 0 on dev, which it
    trained on, where its reference run `refit` (extractor.json: `reference`) scored above 0 unseen;
    say so on stderr when it scores above 0 but below the reference (tiny runs do, from noise) and
    `warn` is set (every process checks the same gathered score, only the main one says so)."""
    unseen = reference["training"][part]["best_dev"]
    if trained_dev_f1 >= unseen:
        return
    said = (f"{part}: the refit scores F1 {trained_dev_f1:.4f} on dev, which it trained on, below the {unseen:.4f} its "
            f"reference {refit} scored on dev unseen")
    if trained_dev_f1 > 0:
        if warn:
            print(f"warning: {said}: check it before using it", file=sys.stderr)
        return
    raise RefitFailed(
        f"{said}: training collapsed, so no run was written. A refit keeps its reference's config and seed: leave this "
        "seed out (its reference too, from the ensemble named by --refit-of), or train a reference with another seed and "
        "refit that (BENCHMARKS.md, 'Why MPNet collapses')"
    )


def load_reference(config: Config) -> dict[str, Any]:
    """The reference run's extractor.json, checked to come from this very config."""
    settings_file = Path(config.refit) / "extractor.json"
    if not settings_file.is_file():
        raise ConfigError(f"refit: {settings_file} does not exist (refit names a run directory of this config trained on train alone)")
    reference = json.loads(settings_file.read_text(encoding="utf-8"))
    if reference.get("config", {}).get("refit"):
        raise ConfigError(f"refit: {config.refit} is itself a refit run; name the run trained on train alone")
    # Rebuilt through the config loader, so keys added to the code since that run count as their defaults.
    # Keys removed since, where the run left them off, are dropped (RETIRED).
    theirs, ours = config_from_dict(without_retired(reference.get("config", {})), settings_file).to_dict(), config.to_dict()
    differ = sorted(k for k in set(theirs) | set(ours) if k not in FREE_KEYS and theirs.get(k) != ours.get(k))
    if differ:
        raise ConfigError(f"refit: {config.refit} was trained with another config (it differs in {', '.join(differ)})")
    if "calibration" not in reference:
        raise ConfigError(f"refit: {config.refit} holds no calibration to reuse")
    return reference


def without_retired(config: dict[str, Any]) -> dict[str, Any]:
    """A run's stored config without the RETIRED settings it left off."""
    kept = dict(config)
    for section, off in RETIRED.items():
        if isinstance(config.get(section), dict):
            kept[section] = {k: v for k, v in config[section].items() if not (k in off and v == off[k])}
    return kept


def peak_epoch(reference: dict[str, Any], part: str) -> int:
    """The epoch of the reference's best dev score for `part` ("ner" or "relations"): the one whose weights it kept."""
    return best_epoch(reference["training"][part]["history"])["epoch"]


def refit_config(config: Config, reference: dict[str, Any]) -> Config:
    """`config` with each model's epochs fixed at the reference's best."""
    ner = dataclasses.replace(config.ner, epochs=peak_epoch(reference, "ner"))
    relations = config.relations and dataclasses.replace(config.relations, epochs=peak_epoch(reference, "relations"))
    return dataclasses.replace(config, ner=ner, relations=relations)


def reused_calibration(refit: str, reference: dict[str, Any]) -> dict[str, Any]:
    """The calibration of the reference run `refit` (its extractor.json: `reference`), marked as copied."""
    return {**reference["calibration"], "fitted_on": f"{reference['calibration'].get('fitted_on')}, by the reference run {refit} "
                                                     "(copied: this run trained on that split)"}
