"""evaluate --report (HTML and markdown report, error examples) and the run's MODEL_CARD.md."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

from inference.render import colours
from inference.schema import Article, Document, Entity, Relation, RelationMention, Span
from training.evaluate import MISSED, SPURIOUS, type_confusion
from training.report import confusion_table, example_views


def test_type_confusion_counts_boundary_matches_missed_and_spurious():
    doc = Document("d", "Ann met Bob in Oslo", [Span(0, 3, "Peop"), Span(8, 11, "Peop"), Span(15, 19, "Loc")])
    predicted = Article("d", doc.text, [Entity("T1", 0, 3, "Ann", "Peop", 0.9), Entity("T2", 8, 11, "Bob", "Org", 0.8),
                                        Entity("T3", 4, 7, "met", "Loc", 0.2)])
    confusion = type_confusion([doc], [predicted])
    assert confusion == {"Peop": {"Peop": 1, "Org": 1}, "Loc": {MISSED: 1}, SPURIOUS: {"Loc": 1}}
    table = confusion_table(confusion)
    assert table.columns == ["gold \\ predicted", "Loc", "Org", "Peop", MISSED]
    assert table.rows[2] == ["Peop", "0", "1", "1", "0"] and table.rows[3] == [SPURIOUS, "1", "0", "0", ""]


def test_example_views_mark_right_wrong_and_missed():
    doc = Document("d", "Ann works for Acme in Oslo", [Span(0, 3, "Peop"), Span(14, 18, "Org"), Span(22, 26, "Loc")],
                   [RelationMention(0, 1, "Work_For"), RelationMention(1, 2, "OrgBased_In")])
    article = Article("d", doc.text, [Entity("T1", 0, 3, "Ann", "Peop", 0.9), Entity("T2", 14, 18, "Acme", "Loc", 0.6)],
                      [Relation("T1", "T2", "Live_In", 0.4)])
    gold, pred, errors = example_views(doc, article, [])
    assert [m.status for m in gold.marks] == ["tp", "fn", "fn"] and [a.status for a in gold.arcs] == ["fn", "fn"]
    assert [m.status for m in pred.marks] == ["tp", "fp"] and [a.status for a in pred.arcs] == ["fp"]
    assert errors == 6


def test_evaluate_report_writes_html_markdown_plots_and_examples(tiny_run: Path, tmp_path: Path):
    from training.cli import main

    report = tmp_path / "report"
    assert main(["evaluate", "--model", str(tiny_run), "--out", str(tmp_path / "m.json"), "--report", str(report)]) == 0
    metrics = json.loads((tmp_path / "m.json").read_text())
    for name in ("f1_sentence.png", "reliability_sentence.png", "thresholds_sentence.png"):
        png = (report / name).read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000
    md = (report / "report_sentence.md").read_text(encoding="utf-8")
    micro = metrics["ner"]["micro"]
    assert f"| micro | {micro['precision']:.3f} | {micro['recall']:.3f} | {micro['f1']:.3f} | {micro['support']} |" in md
    assert "gold \\ predicted" in md and "![F1 per type](f1_sentence.png)" in md
    html = (report / "report_sentence.html").read_text(encoding="utf-8")
    assert html.count("data:image/png;base64,") == 3 and 'href="examples_sentence.html"' in html
    examples = (report / "examples_sentence.html").read_text(encoding="utf-8")
    assert examples.count('<section class="example"') == 3, "the three test sentences"
    gold_marks = re.findall(r'<mark class="ent (tp|fn)" data-key="G\d+"', examples)
    assert len(gold_marks) == micro["support"]
    assert gold_marks.count("tp") == round(micro["recall"] * micro["support"])


def test_training_writes_a_model_card_and_evaluate_refreshes_it(tiny_run: Path, tmp_path: Path):
    from training.cli import main

    card = (tiny_run / "MODEL_CARD.md").read_text(encoding="utf-8")
    settings = json.loads((tiny_run / "extractor.json").read_text())
    assert settings["data"]["train"]["sha256"] in card and "Loc, Org, Peop" in card
    assert "Live_In, OrgBased_In, Work_For" in card and "uncased" in card
    assert f"best dev F1 {settings['training']['ner']['best_dev']:.3f}" in card and "Not evaluated yet" in card
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    assert main(["evaluate", "--model", str(run)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    card = (run / "MODEL_CARD.md").read_text(encoding="utf-8")
    assert f"F1 **{metrics['ner']['micro']['f1']:.3f}**" in card and "Not evaluated yet" not in card
    assert metrics["commit"] in card
    assert main(["calibrate", "--model", str(run)]) == 0  # new scores: the test figures wait for the next evaluate
    assert "Not evaluated yet" in (run / "MODEL_CARD.md").read_text(encoding="utf-8")


def test_the_model_card_tells_of_a_rolled_back_collapse(tiny_run: Path):
    from training.model_card import model_card

    settings = json.loads((tiny_run / "extractor.json").read_text())
    assert "rolled back" not in model_card(tiny_run, settings)
    settings["training"]["ner"]["history"][-1]["rolled_back_to"] = 1
    epoch = settings["training"]["ner"]["history"][-1]["epoch"]
    assert f"dev F1 fell to 0 at epoch {epoch} (training collapsed): rolled back to the epoch-1 weights" in model_card(tiny_run, settings)
    # A refit rolls back alike (its dev F1 only a collapse detector: dev is its training data).
    settings["training"]["ner"]["best_dev"], settings["config"]["refit"] = None, "runs/reference"
    card = model_card(tiny_run, settings)
    assert "a refit of `runs/reference`" in card and f"fell to 0 at epoch {epoch} (training collapsed): rolled back" in card


def test_the_model_card_states_how_each_model_was_optimised(tiny_run: Path):
    from training.model_card import model_card

    settings = json.loads((tiny_run / "extractor.json").read_text())
    ner = settings["config"]["ner"]
    card = model_card(tiny_run, settings)
    assert f"learning rate {ner['learning_rate']}, batch {ner['batch_size']}, warm-up {ner['warmup_ratio']}" in card
    assert "mixed precision no" in card and "FGM" not in card and "shape table at" not in card
    ner["adversarial_epsilon"], ner["casing_learning_rate"], settings["config"]["mixed_precision"] = 1.0, 0.001, "bf16"
    card = model_card(tiny_run, settings)
    assert "shape table at 0.001, FGM adversarial steps (epsilon 1.0), mixed precision bf16" in card


def test_colours_are_stable_and_distinct():
    assert colours(["b", "a"]) == colours(["a", "b"]) and len(set(colours(["a", "b", "c"]).values())) == 3
