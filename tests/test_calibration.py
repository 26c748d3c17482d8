"""Temperature scaling and the expected calibration error."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from inference import NewsExtractor
from inference.calibration import expected_calibration_error, fit_temperature


@pytest.mark.parametrize("true_temperature", [0.5, 1.0, 2.5])
def test_fit_recovers_a_known_temperature(true_temperature: float):
    gen = torch.Generator().manual_seed(0)
    calibrated = torch.randn(20000, 5, generator=gen) * 2.0
    labels = torch.multinomial(calibrated.softmax(-1), 1, generator=gen).squeeze(1)
    # A model whose logits are `true_temperature` times too sharp (or too flat).
    fitted = fit_temperature(calibrated * true_temperature, labels)
    assert fitted == pytest.approx(true_temperature, rel=0.05)


def test_ece_on_a_hand_made_example():
    # Bin (0.867, 0.933]: mean score 0.9, accuracy 0.5; bin (0.067, 0.133]: mean 0.1, accuracy 0.
    scores = [0.9, 0.9, 0.1, 0.1]
    correct = [True, False, False, False]
    assert expected_calibration_error(scores, correct) == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    assert expected_calibration_error([1.0, 0.0], [True, False]) == pytest.approx(0.0)
    assert expected_calibration_error([], []) == 0.0


def test_runs_carry_temperatures_and_raw_scores_stay_available(tiny_run: Path):
    calibration = json.loads((tiny_run / "extractor.json").read_text())["calibration"]
    assert calibration["ner_temperature"] > 0 and calibration["relation_temperature"] > 0
    text = "John Smith works for Acme Corp in Boston ."
    calibrated = NewsExtractor.from_pretrained(tiny_run).extract(text)
    raw = NewsExtractor.from_pretrained(tiny_run, calibrated=False).extract(text)
    assert [(e.start, e.end) for e in calibrated.entities] == [(e.start, e.end) for e in raw.entities]
    if abs(calibration["ner_temperature"] - 1.0) > 0.05:
        assert [e.score for e in calibrated.entities] != pytest.approx([e.score for e in raw.entities])


def test_calibrate_command_refits_in_place(tiny_run: Path, capsys):
    from training.cli import main

    before = json.loads((tiny_run / "extractor.json").read_text())
    assert main(["calibrate", "--model", str(tiny_run)]) == 0
    after = json.loads((tiny_run / "extractor.json").read_text())
    assert "temperatures fitted" in capsys.readouterr().out
    assert after["calibration"]["ner_temperature"] == pytest.approx(before["calibration"]["ner_temperature"], rel=1e-3)
    assert {k: v for k, v in after.items() if k != "calibration"} == {k: v for k, v in before.items() if k != "calibration"}
