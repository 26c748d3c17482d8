"""Temperature scaling and the expected calibration error."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
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


def test_runs_carry_calibration_and_raw_scores_stay_available(tiny_run: Path):
    calibration = json.loads((tiny_run / "extractor.json").read_text())["calibration"]
    assert calibration["ner_temperature"] > 0 and calibration["relation_temperature"] > 0
    assert len(calibration["relation_map"]) == 3  # label probability, entity scores, bias
    assert set(calibration["entity_platt"]) >= {"all"} and all(len(ab) == 2 for ab in calibration["entity_platt"].values())
    mentions = json.loads((tiny_run / "known_mentions.json").read_text())["mentions"]
    assert "john smith" in mentions["Peop"] and "acme corp" in mentions["Org"]
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
    assert "score maps for entity and relation" in capsys.readouterr().out
    assert "score maps: entity_platt, relation_map" in (tiny_run / "MODEL_CARD.md").read_text()
    assert after["calibration"]["ner_temperature"] == pytest.approx(before["calibration"]["ner_temperature"], rel=1e-3)
    assert {k: v for k, v in after.items() if k != "calibration"} == {k: v for k, v in before.items() if k != "calibration"}


def test_min_score_leaves_out_low_scores_and_their_relations(tiny_run: Path):
    extractor = NewsExtractor.from_pretrained(tiny_run)
    text = "John Smith works for Acme Corp in Boston . Maria Lopez lives in Paris ."
    full = extractor.extract(text, min_score=0.0)  # everything found
    scores = sorted({e.score for e in full.entities} | {r.score for r in full.relations})
    cut = scores[len(scores) // 2]
    kept = extractor.extract(text, min_score=cut)
    assert [e.id for e in kept.entities] == [e.id for e in full.entities if e.score >= cut]
    ids = {e.id for e in kept.entities}
    assert all(r.score >= cut and {r.head, r.tail} <= ids for r in kept.relations)
    default = extractor.extract(text)  # the run's decision floors: a subset of everything
    assert {(r.head, r.tail, r.label, r.score) for r in default.relations} <= {(r.head, r.tail, r.label, r.score) for r in full.relations}
    assert {(e.id, e.score) for e in default.entities} <= {(e.id, e.score) for e in full.entities}
    with pytest.raises(ValueError, match="min_score"):
        extractor.extract(text, min_score=1.5)


def test_platt_fit_recovers_known_parameters():
    from inference.calibration import apply_platt, fit_platt

    gen = torch.Generator().manual_seed(0)
    scores = torch.rand(20000, generator=gen).clamp(0.01, 0.99)
    logit = torch.log(scores / (1 - scores))
    truth = torch.sigmoid(0.6 * logit - 0.8)  # overconfident scores, shifted down
    correct = (torch.rand(20000, generator=gen) < truth).tolist()
    a, b = fit_platt(scores.tolist(), correct)
    assert a == pytest.approx(0.6, abs=0.05) and b == pytest.approx(-0.8, abs=0.05)
    assert apply_platt(0.5, (a, b)) == pytest.approx(float(torch.sigmoid(torch.tensor(b))), abs=1e-6)
    assert fit_platt([0.2, 0.9], [True, True]) == (1.0, 0.0)  # nothing to learn from


def test_relation_map_recovers_known_weights_and_raw_scores_stay_a_product():
    from inference.calibration import fit_logistic, relation_logits, relation_score, sigmoid

    gen = torch.Generator().manual_seed(0)
    probability, head, tail = (torch.rand(20000, generator=gen).clamp(0.02, 0.98) for _ in range(3))
    features = [relation_logits(p, h, t) for p, h, t in zip(probability.tolist(), head.tolist(), tail.tolist())]
    # Right more often when the entities are sure than when the pair classifier is.
    truth = torch.tensor([sigmoid(0.4 * x[0] + 1.2 * x[1] + 0.3) for x in features])
    correct = (torch.rand(20000, generator=gen) < truth).tolist()
    weights = fit_logistic(features, correct)
    assert weights == pytest.approx([0.4, 1.2, 0.3], abs=0.06)
    assert relation_score(0.8, 0.9, 0.5, weights) == pytest.approx(sigmoid(sum(w * x for w, x in zip(weights, relation_logits(0.8, 0.9, 0.5))) + weights[2]))
    assert relation_score(0.8, 0.9, 0.5, None) == pytest.approx(0.8 * 0.9 * 0.5)
    assert fit_logistic([[0.1, 0.2]], [True]) == [1.0, 1.0, 0.0]  # nothing to learn from


def test_a_run_with_the_former_relation_map_asks_to_be_recalibrated(tiny_run: Path, tmp_path: Path):
    from inference import RunDirectoryError

    run = tmp_path / "old"
    shutil.copytree(tiny_run, run)
    settings = json.loads((run / "extractor.json").read_text())
    settings["calibration"]["relation_platt"] = settings["calibration"].pop("relation_map")[:2]
    (run / "extractor.json").write_text(json.dumps(settings))
    with pytest.raises(RunDirectoryError, match="python -m training calibrate"):
        NewsExtractor.from_pretrained(run)
    assert NewsExtractor.from_pretrained(run, relations=False).extract("John Smith works .").relations == []


def test_grouped_platt_fits_groups_with_enough_examples_only():
    from inference.calibration import MIN_GROUP, fit_grouped_platt

    scores = [0.9] * MIN_GROUP + [0.9] * 5
    correct = [True] * (MIN_GROUP - 3) + [False] * 3 + [False] * 5
    fitted = fit_grouped_platt(scores, correct, ["known"] * MIN_GROUP + ["new"] * 5)
    assert set(fitted) == {"all", "known"}


def test_ece_sampling_floor_is_larger_on_fewer_extractions():
    from inference.calibration import ece_sampling_floor

    assert ece_sampling_floor([1.0] * 50) == 0.0  # certain outcomes: no sampling noise
    few, many = ece_sampling_floor([0.6] * 40), ece_sampling_floor([0.6] * 4000)
    assert few > 3 * many > 0


def test_ece_noise_tells_sampling_noise_from_miscalibration():
    from inference.calibration import ece_noise

    gen = np.random.default_rng(1)
    scores = gen.uniform(0.05, 0.95, 400).tolist()
    calibrated = (gen.random(400) < np.array(scores)).tolist()  # right as often as the scores say
    overconfident = (gen.random(400) < np.array(scores) - 0.25).tolist()  # right 25 points less often
    fair = ece_noise(scores, expected_calibration_error(scores, calibrated))
    bad = ece_noise(scores, expected_calibration_error(scores, overconfident))
    assert fair["p"] > 0.05 and bad["p"] == 0.0
    assert fair["floor"] == bad["floor"] > 0.02  # the floor depends on the scores alone


def test_thresholds_pick_the_least_score_reaching_the_target():
    from training.calibrate import fit_thresholds
    from training.evaluate import Outcomes

    outcomes = Outcomes([0.95, 0.9, 0.8, 0.7, 0.6, 0.5], [True, True, True, False, True, False], ["A"] * 6)
    outcomes.add(0.9, False, "B")
    thresholds = fit_thresholds(outcomes, {"A": 5, "B": 1}, target=0.8)
    assert thresholds["A"] == {"min_score": 0.6, "precision": 0.8, "recall": 0.8, "kept": 5 / 6, "reached": True}
    assert thresholds["B"]["reached"] is False and thresholds["B"]["precision"] == 0.0


def test_run_thresholds_and_per_label_floors_apply_in_the_output(tiny_run: Path):
    extractor = NewsExtractor.from_pretrained(tiny_run)
    stored = extractor.calibration["thresholds"]
    assert stored["target_precision"] == 0.9 and set(stored["entities"]) <= {"Loc", "Org", "Peop"}
    text = "John Smith works for Acme Corp in Boston . Maria Lopez lives in Paris ."
    full = extractor.extract(text, min_score=0.0)
    floors = {label: t["min_score"] for kind in ("entities", "relations") for label, t in stored[kind].items()}
    by_run = extractor.extract(text, min_score="run")
    assert [e.id for e in by_run.entities] == [e.id for e in full.entities if e.score >= floors.get(e.label, 0.0)]
    assert [r.score >= floors[r.label] for r in by_run.relations] == [True] * len(by_run.relations)
    # A mapping raises the floor of one label only.
    only_peop = extractor.extract(text, min_score={"Peop": 1.0})
    assert all(e.label != "Peop" for e in only_peop.entities)
    assert [e.id for e in only_peop.entities] == [e.id for e in full.entities if e.label != "Peop"]
    with pytest.raises(ValueError, match="unknown labels"):
        extractor.extract(text, min_score={"Person": 0.5})
    with pytest.raises(ValueError, match="min_score"):
        extractor.extract(text, min_score="high")


def test_decision_floor_maximises_f1_and_prefers_the_lowest_among_equals():
    from training.calibrate import fit_decision_floor
    from training.evaluate import Outcomes

    # Three right at 0.9, two wrong at 0.3, one right at 0.12; 5 gold. Keeping all: F1 2*4/(6+5);
    # from 0.15 (up to 0.30): 2*3/(5+5); from 0.35 (up to 0.90): 2*3/(3+5), the best: 0.35 is the lowest.
    outcomes = Outcomes([0.9, 0.9, 0.9, 0.3, 0.3, 0.12], [True, True, True, False, False, True], ["A"] * 6)
    assert fit_decision_floor(outcomes, gold=5) == {"min_score": 0.35, "f1": 0.75, "f1_keeping_all": 8 / 11}
    assert fit_decision_floor(Outcomes([], [], []), gold=3)["min_score"] == 0.0


def test_a_run_without_relations_gets_no_relation_floor(tiny_run: Path, tiny_data: Path):
    from training.calibrate import fit_calibration
    from training.readers import read_documents

    extractor = NewsExtractor.from_pretrained(tiny_run)
    extractor.relation_tagger = None  # an NER-only run
    fitted = fit_calibration(extractor, read_documents(tiny_data / "tiny" / "dev.json", "spert"), 0.9)
    assert set(fitted["decision"]) == {"entities"}


def test_decision_floors_shape_the_default_output(tiny_run: Path):
    extractor = NewsExtractor.from_pretrained(tiny_run)
    assert set(extractor.calibration["decision"]) == {"entities", "relations"}  # fitted by training
    text = "John Smith works for Acme Corp in Boston . Maria Lopez lives in Paris ."
    everything = extractor.extract(text, min_score=0.0)
    assert everything.entities, "the tiny model finds something to leave out"
    cut = sorted(e.score for e in everything.entities)[len(everything.entities) // 2]
    extractor.calibration["decision"] = {"entities": {"min_score": cut}, "relations": {"min_score": 1.0}}
    default = extractor.extract(text)
    assert [e.id for e in default.entities] == [e.id for e in everything.entities if e.score >= cut]
    assert default.relations == []
    # Relations kept by the default floors keep their entities, even under the entity floor.
    extractor.calibration["decision"] = {"entities": {"min_score": 1.0}, "relations": {"min_score": 0.0}}
    default = extractor.extract(text)
    related = {i for r in everything.relations for i in (r.head, r.tail)}
    assert related, "the tiny model relates something"
    assert [e.id for e in default.entities] == [e.id for e in everything.entities if e.id in related]
    assert len(default.relations) == len(everything.relations)
    extractor.set_calibration({})  # raw scores: no floors
    assert len(extractor.extract(text).entities) == len(everything.entities)


def test_kept_by_floor_counts_precision_and_recall_per_label():
    from training.evaluate import Outcomes, kept_by_floor

    outcomes = Outcomes([0.9, 0.8, 0.4, 0.95], [True, False, True, True], ["A", "A", "A", "B"])
    kept = kept_by_floor(outcomes, lambda label: {"A": 0.5, "B": 0.99}[label], {"A": 4, "B": 1})
    assert kept["per_type"]["A"] == {"precision": 0.5, "recall": 0.25, "kept": 2}
    assert kept["per_type"]["B"] == {"precision": 0.0, "recall": 0.0, "kept": 0}
    assert kept["micro"] == {"precision": 0.5, "recall": 0.2, "kept": 2}
