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


def test_isotonic_map_is_monotone_and_matches_accuracy():
    from inference.calibration import apply_isotonic, fit_isotonic

    scores = [0.1, 0.2, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9]
    correct = [False, True, False, False, True, True, False, True]
    knots = fit_isotonic(scores, correct)
    mapped = [apply_isotonic(s, knots) for s in scores]
    assert mapped == sorted(mapped)
    # Pool adjacent violators: mean accuracy of each pooled block.
    assert knots[1] == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0])
    assert apply_isotonic(0.0, knots) == 0.0 and apply_isotonic(1.0, knots) == 1.0


def test_ece_on_a_hand_made_example():
    # Bin (0.867, 0.933]: mean score 0.9, accuracy 0.5; bin (0.067, 0.133]: mean 0.1, accuracy 0.
    scores = [0.9, 0.9, 0.1, 0.1]
    correct = [True, False, False, False]
    assert expected_calibration_error(scores, correct) == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    assert expected_calibration_error([1.0, 0.0], [True, False]) == pytest.approx(0.0)
    assert expected_calibration_error([], []) == 0.0


def test_runs_carry_calibration_and_raw_scores_stay_available(tiny_run: Path):
    calibration = json.loads((tiny_run / "extractor.json").read_text())["calibration"]
    assert calibration["ner_temperature"] > 0 and calibration["relation_temperature"] > 0
    for key in ("entity_isotonic", "relation_isotonic"):
        xs, ys = calibration[key]
        assert xs == sorted(xs) and ys == sorted(ys) and all(0.0 <= y <= 1.0 for y in ys)
    text = "John Smith works for Acme Corp in Boston ."
    calibrated = NewsExtractor.from_pretrained(tiny_run).extract(text)
    raw = NewsExtractor.from_pretrained(tiny_run, calibrated=False).extract(text)
    assert [(e.start, e.end) for e in calibrated.entities] == [(e.start, e.end) for e in raw.entities]
    assert all(0.0 <= e.score <= 1.0 for e in calibrated.entities + raw.entities)


def test_calibrate_command_refits_in_place(tiny_run: Path, capsys):
    from training.cli import main

    before = json.loads((tiny_run / "extractor.json").read_text())
    assert main(["calibrate", "--model", str(tiny_run)]) == 0
    after = json.loads((tiny_run / "extractor.json").read_text())
    assert "calibration fitted" in capsys.readouterr().out
    assert after["calibration"]["ner_temperature"] == pytest.approx(before["calibration"]["ner_temperature"], rel=1e-3)
    assert {k: v for k, v in after.items() if k != "calibration"} == {k: v for k, v in before.items() if k != "calibration"}


def test_min_score_leaves_out_low_scores_and_their_relations(tiny_run: Path):
    extractor = NewsExtractor.from_pretrained(tiny_run)
    text = "John Smith works for Acme Corp in Boston . Maria Lopez lives in Paris ."
    full = extractor.extract(text)
    scores = sorted({e.score for e in full.entities} | {r.score for r in full.relations})
    cut = scores[len(scores) // 2]
    kept = extractor.extract(text, min_score=cut)
    assert [e.id for e in kept.entities] == [e.id for e in full.entities if e.score >= cut]
    ids = {e.id for e in kept.entities}
    assert all(r.score >= cut and {r.head, r.tail} <= ids for r in kept.relations)
    assert extractor.extract(text, min_score=0.0).to_dict() == full.to_dict()
    with pytest.raises(ValueError, match="min_score"):
        extractor.extract(text, min_score=1.5)
