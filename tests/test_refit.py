"""Refit on train + dev (training/refit.py): epochs and calibration from the reference run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from training.config import ConfigError, load_config
from training.refit import RefitFailed, check_refit, load_reference


def settings(run: Path) -> dict:
    return json.loads((run / "extractor.json").read_text(encoding="utf-8"))


def test_refit_trains_on_dev_for_the_reference_epochs(tiny_config, tiny_run, tmp_path):
    from training.cli import main

    output = tmp_path / "refit"
    assert main(["train", "--config", str(tiny_config), "--output", str(output), "--set", f"refit={tiny_run}"]) == 0
    ref, got = settings(tiny_run), settings(output)
    for part in ("ner", "relations"):
        history = ref["training"][part]["history"]
        best = max(history, key=lambda h: (h["dev_f1"], -h["epoch"]))["epoch"]
        assert got["config"][part]["epochs"] == best
        assert [h["epoch"] for h in got["training"][part]["history"]] == list(range(1, best + 1))
        assert got["training"][part]["best_dev"] is None and all("dev_f1" not in h for h in got["training"][part]["history"])
        # Dev, its training data, is scored after every epoch (a collapse detector), the last one the check.
        detected = [h["trained_dev_f1"] for h in got["training"][part]["history"]]
        assert len(detected) == best and detected[-1] == got["training"][part]["trained_dev_f1"]
        # Dev joined the training data: more examples than the reference had.
        assert got["training"][part]["examples"] > ref["training"][part]["examples"]
        # Written, so it finds something on dev, its training data now (check_refit).
        assert got["training"][part]["trained_dev_f1"] > 0
    assert {k: v for k, v in got["calibration"].items() if k != "fitted_on"} == {
        k: v for k, v in ref["calibration"].items() if k != "fitted_on"
    }
    assert str(tiny_run) in got["calibration"]["fitted_on"]
    assert "trained on train + dev for" in (output / "MODEL_CARD.md").read_text(encoding="utf-8")
    # `calibrate` on a refit copies the reference's calibration again: dev is its training data.
    stale = {**got, "calibration": {**got["calibration"], "ner_temperature": 9.0}}
    (output / "extractor.json").write_text(json.dumps(stale), encoding="utf-8")
    assert main(["calibrate", "--model", str(output)]) == 0
    assert settings(output)["calibration"]["ner_temperature"] == ref["calibration"]["ner_temperature"] != 9.0


def test_refit_refuses_a_reference_of_another_config(tiny_config, tiny_run, tmp_path):
    with pytest.raises(ConfigError, match=r"differs in ner"):
        load_reference(load_config(tiny_config, [f"refit={tiny_run}", "ner.learning_rate=1e-3"]))
    with pytest.raises(ConfigError, match=r"does not exist"):
        load_reference(load_config(tiny_config, [f"refit={tmp_path / 'nowhere'}"]))


def test_refit_of_a_run_older_than_a_config_key(tiny_config, tiny_run, tmp_path):
    """A reference written before a key existed counts as having that key's default, so adding
    a setting to the code does not orphan the runs already trained."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    stored = settings(old)
    del stored["config"]["ner"]["casing_learning_rate"]
    (old / "extractor.json").write_text(json.dumps(stored), encoding="utf-8")
    assert load_reference(load_config(tiny_config, [f"refit={old}"]))["config"] == stored["config"]
    with pytest.raises(ConfigError, match=r"differs in ner"):
        load_reference(load_config(tiny_config, [f"refit={old}", "ner.casing_learning_rate=1e-3"]))


def test_refit_of_a_run_older_than_a_removed_config_key(tiny_config, tiny_run, tmp_path):
    """A reference written while a since-removed setting existed refits if it left it off (what
    the code now does), and is refused with the key named if it used it."""
    import shutil

    old = tmp_path / "old"
    shutil.copytree(tiny_run, old)
    stored = settings(old)
    stored["config"]["ner"].update(layer_decay=None, crf=False, label_smoothing=0.0)
    (old / "extractor.json").write_text(json.dumps(stored), encoding="utf-8")
    assert load_reference(load_config(tiny_config, [f"refit={old}"]))["config"] == stored["config"]
    stored["config"]["ner"]["layer_decay"] = 0.9
    (old / "extractor.json").write_text(json.dumps(stored), encoding="utf-8")
    with pytest.raises(ConfigError, match=r"unknown key 'layer_decay'"):
        load_reference(load_config(tiny_config, [f"refit={old}"]))


def test_a_refit_that_finds_nothing_on_dev_is_not_written(tiny_config, tiny_run, tmp_path, monkeypatch, capsys):
    """A refit has no dev score of its own; it trained on dev, so finding nothing there means its
    training collapsed (an MPNet refit did so: all O), and no run is written for an ensemble to take."""
    import training.train_ner
    from training.cli import main

    assert settings(tiny_run)["training"]["ner"]["best_dev"] > 0
    monkeypatch.setattr(training.train_ner, "evaluate_documents", lambda *a, **k: {"ner": {"micro": {"f1": 0.0}}})
    output = tmp_path / "refit"
    assert main(["train", "--config", str(tiny_config), "--output", str(output), "--set", f"refit={tiny_run}"]) == 2
    err = capsys.readouterr().err
    assert "ner: the refit scores F1 0.0000 on dev, which it trained on, below the" in err
    assert f"its reference {tiny_run} scored on dev unseen: training collapsed, so no run was written" in err
    assert not output.exists()


def test_a_refit_below_its_reference_on_dev_is_reported(capsys):
    reference = {"training": {"relations": {"best_dev": 0.9}}}
    check_refit("runs/ref", "relations", 0.95, reference)
    assert capsys.readouterr().err == ""
    check_refit("runs/ref", "relations", 0.5, reference)
    assert "warning: relations: the refit scores F1 0.5000 on dev" in capsys.readouterr().err
    check_refit("runs/ref", "relations", 0.5, reference, warn=False)  # another process than the main one
    assert capsys.readouterr().err == ""
    with pytest.raises(RefitFailed):  # a collapse stops every process alike
        check_refit("runs/ref", "relations", 0.0, reference, warn=False)
    with pytest.raises(RefitFailed, match="relations: the refit scores F1 0.0000 on dev"):
        check_refit("runs/ref", "relations", 0.0, reference)
    check_refit("runs/ref", "relations", 0.0, {"training": {"relations": {"best_dev": 0.0}}})  # nothing to fall from
