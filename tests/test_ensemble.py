"""Ensembles of runs: probabilities averaged, an ensemble run directory that loads like a run,
clear errors for members that do not belong together."""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from inference import NewsExtractor, RunDirectoryError
from inference.ensemble import MeanOfModels
from training.cli import main as training_main

TEXT = "John Smith works for Acme Corp in Boston. Maria Lopez lives in Paris since Monday."


class _Fixed(torch.nn.Module):
    def __init__(self, logits: list[float]) -> None:
        super().__init__()
        self.logits = torch.nn.Parameter(torch.tensor(logits))

    def forward(self, **inputs):
        return SimpleNamespace(logits=self.logits.expand(*inputs["input_ids"].shape, -1))


def test_mean_of_models_averages_probabilities_not_logits():
    ensemble = MeanOfModels([_Fixed([0.0, 0.0]), _Fixed([4.0, 0.0])])
    probs = ensemble(input_ids=torch.zeros(1, 3, dtype=torch.long)).logits.softmax(-1)
    expected = (torch.tensor([0.5, 0.5]) + torch.tensor([4.0, 0.0]).softmax(-1)) / 2
    torch.testing.assert_close(probs[0, 0], expected)


@pytest.fixture(scope="module")
def ensemble_run(tiny_run: Path, tmp_path_factory) -> Path:
    second = tmp_path_factory.mktemp("member") / "second"
    shutil.copytree(tiny_run, second)
    out = tmp_path_factory.mktemp("ensembles") / "pair"
    assert training_main(["ensemble", "--members", str(tiny_run), str(second), "--output", str(out)]) == 0
    return out


def test_ensemble_run_loads_and_agrees_with_identical_members(tiny_run: Path, ensemble_run: Path):
    settings = json.loads((ensemble_run / "extractor.json").read_text())
    assert len(settings["members"]) == 2 and "calibration" in settings and not (ensemble_run / "ner").exists()
    single = NewsExtractor.from_pretrained(tiny_run, device="cpu", calibrated=False).extract(TEXT)
    double = NewsExtractor.from_pretrained(ensemble_run, device="cpu", calibrated=False).extract(TEXT)
    assert [(e.start, e.end, e.label) for e in double.entities] == [(e.start, e.end, e.label) for e in single.entities]
    assert [e.score for e in double.entities] == pytest.approx([e.score for e in single.entities], abs=1e-5)
    assert [(r.head, r.tail, r.label) for r in double.relations] == [(r.head, r.tail, r.label) for r in single.relations]
    calibrated = NewsExtractor.from_pretrained(ensemble_run, device="cpu").extract(TEXT, min_score="run")
    assert all(0.0 <= e.score <= 1.0 for e in calibrated.entities)


def test_ensemble_evaluates_like_a_run(ensemble_run: Path, tmp_path: Path):
    out = tmp_path / "metrics.json"
    assert training_main(["evaluate", "--model", str(ensemble_run), "--out", str(out), "--level", "sentence"]) == 0
    assert "f1" in json.loads(out.read_text())["ner"]["micro"]


def test_members_must_match_and_ensembles_run_on_torch(tiny_run: Path, ensemble_run: Path, tmp_path: Path, capsys):
    other = tmp_path / "other"
    shutil.copytree(tiny_run, other)
    settings = json.loads((other / "extractor.json").read_text())
    settings["window"]["stride"] += 1
    (other / "extractor.json").write_text(json.dumps(settings))
    assert training_main(["ensemble", "--members", str(tiny_run), str(other), "--output", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert "differs from" in err and "window" in err
    assert training_main(["ensemble", "--members", str(tiny_run), "--output", str(tmp_path / "e")]) == 2
    with pytest.raises(ValueError, match="torch backend only"):
        NewsExtractor.from_pretrained(ensemble_run, backend="onnx")
    # A member changed after the ensemble was made is refused at load, naming it.
    member = (ensemble_run / json.loads((ensemble_run / "extractor.json").read_text())["members"][1]).resolve()
    saved = (member / "extractor.json").read_text()
    (member / "extractor.json").write_text(json.dumps({**json.loads(saved), "casing": False}))
    try:
        with pytest.raises(RunDirectoryError, match="casing"):
            NewsExtractor.from_pretrained(ensemble_run, device="cpu")
    finally:
        (member / "extractor.json").write_text(saved)


def test_an_ensemble_of_refit_runs_takes_the_calibration_of_their_references_ensemble(tiny_run: Path, tmp_path: Path, capsys):
    # Two "reference" runs and two "refit" runs of them (copies marked as refits: only the marking matters here).
    refs, refits = [tmp_path / "ref13", tmp_path / "ref14"], [tmp_path / "refit13", tmp_path / "refit14"]
    for ref, refit in zip(refs, refits):
        shutil.copytree(tiny_run, ref)
        shutil.copytree(tiny_run, refit)
        settings = json.loads((refit / "extractor.json").read_text())
        settings["config"]["refit"] = str(ref)
        (refit / "extractor.json").write_text(json.dumps(settings))
    members = ["--members", *map(str, refits)]
    assert training_main(["ensemble", *members, "--output", str(tmp_path / "no-reference")]) == 2
    assert "--refit-of" in capsys.readouterr().err and not (tmp_path / "no-reference").exists()
    assert training_main(["ensemble", "--members", *map(str, refs), "--output", str(tmp_path / "refs")]) == 0
    assert training_main(["ensemble", "--members", str(refs[0]), str(tiny_run), "--output", str(tmp_path / "other")]) == 0
    capsys.readouterr()
    assert training_main(["ensemble", *members, "--output", str(tmp_path / "wrong"), "--refit-of", str(tmp_path / "other")]) == 2
    assert "not the members' reference runs" in capsys.readouterr().err
    assert training_main(["ensemble", "--members", *map(str, refs), "--output", str(tmp_path / "x"), "--refit-of", str(tmp_path / "refs")]) == 2
    assert "not refit runs" in capsys.readouterr().err
    out = tmp_path / "refit-ensemble"
    assert training_main(["ensemble", *members, "--output", str(out), "--refit-of", str(tmp_path / "refs")]) == 0
    reference = json.loads((tmp_path / "refs" / "extractor.json").read_text())["calibration"]
    copied = json.loads((out / "extractor.json").read_text())["calibration"]
    assert {k: v for k, v in copied.items() if k != "fitted_on"} == {k: v for k, v in reference.items() if k != "fitted_on"}
    assert "copied" in copied["fitted_on"]
