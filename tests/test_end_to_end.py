"""Train a few steps on a tiny fixture through the CLI, then load, predict and evaluate the run."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from inference import NewsExtractor, RunDirectoryError
from inference.ner import bio_labels

UNICODE_ARTICLE = (
    "John Smith met Ahmed Hassan in Geneva. محمد بن عبدالعزيز الخليفي and José Müller of Société Générale "
    "flew to Paris.\r\nZoë Ångström works for Acme Corp in Boston. "
)


def test_run_directory_is_complete_and_pickle_free(tiny_run: Path):
    assert (tiny_run / "extractor.json").is_file()
    assert (tiny_run / "ner" / "model.safetensors").is_file()
    assert not list(tiny_run.rglob("*.bin")) and not list(tiny_run.rglob("*.pt"))
    settings = json.loads((tiny_run / "extractor.json").read_text())
    assert settings["entity_labels"] == ["Loc", "Org", "Peop"]
    assert settings["data"]["train"]["sha256"] and settings["training"]["ner"]["history"]
    assert settings["relations"]["labels"] == ["Live_In", "OrgBased_In", "Work_For"]
    assert (tiny_run / "relations" / "model.safetensors").is_file() and (tiny_run / "relations" / "head.safetensors").is_file()
    assert not list(tiny_run.parent.glob(".*partial")), "the staging directory must be renamed away"


def test_labels_survive_save_and_load(tiny_run: Path):
    extractor = NewsExtractor.from_pretrained(tiny_run)
    assert extractor.entity_labels == ["Loc", "Org", "Peop"]
    id2label = extractor.tagger.model.config.id2label
    assert [id2label[i] for i in range(len(id2label))] == bio_labels(["Loc", "Org", "Peop"])


def test_a_sentence_trained_run_reads_each_sentence_alone(tiny_run: Path):
    settings = json.loads((tiny_run / "extractor.json").read_text())
    assert settings["config"]["ner"]["context"] == "sentence" and settings["window"]["sentences"] is True
    extractor = NewsExtractor.from_pretrained(tiny_run)

    def found(text: str, shift: int = 0) -> list[tuple[int, int, str, float]]:
        return [(e.start + shift, e.end + shift, e.label, e.score) for e in extractor.extract(text, min_score=0.0).entities]

    first, second = "John Smith works for Acme Corp in Boston.", "Mary Jones lives in Paris and visits Rome."
    together, alone = found(f"{first} {second}"), found(first) + found(second, len(first) + 1)
    assert together and [e[:3] for e in together] == [e[:3] for e in alone]
    assert [e[3] for e in together] == pytest.approx([e[3] for e in alone], abs=1e-5)


def test_ner_directory_loads_in_a_plain_transformers_pipeline(tiny_run: Path):
    from transformers import pipeline

    tagger = pipeline("token-classification", model=str(tiny_run / "ner"), aggregation_strategy="simple")
    out = tagger("John Smith works for Acme Corp in Boston.")
    assert isinstance(out, list)
    assert {e["entity_group"] for e in out} <= {"Loc", "Org", "Peop"}


def test_a_few_steps_learn_something(tiny_run: Path):
    article = NewsExtractor.from_pretrained(tiny_run).extract("John Smith works for Acme Corp in Boston .")
    assert {(e.text, e.label) for e in article.entities} & {("John Smith", "Peop"), ("Boston", "Loc"), ("Acme Corp", "Org")}


def test_a_few_steps_yield_relations_between_found_entities(tiny_run: Path):
    article = NewsExtractor.from_pretrained(tiny_run).extract("John Smith works for Acme Corp in Boston .")
    assert article.relations, "the tiny run should find a relation in a training sentence"
    by_id = {e.id: e for e in article.entities}
    for r in article.relations:
        assert r.head in by_id and r.tail in by_id and r.head != r.tail
    assert len({(r.head, r.tail) for r in article.relations}) == len(article.relations), "one label per pair"


def test_offsets_hold_on_long_unicode_text(tiny_run: Path):
    extractor = NewsExtractor.from_pretrained(tiny_run)  # its windows are 32 tokens: many per article
    long_text = UNICODE_ARTICLE * 20
    article = extractor.extract(long_text)
    assert len(article.entities) > 20
    for e in article.entities:
        assert long_text[e.start : e.end] == e.text and 0.0 <= e.score <= 1.0
    assert len({e.id for e in article.entities}) == len(article.entities)
    starts = [e.start for e in article.entities]
    assert starts == sorted(starts) and all(a.end <= b.start for a, b in zip(article.entities, article.entities[1:]))
    # Batching across articles changes nothing.
    many = extractor.extract_many([UNICODE_ARTICLE, long_text, "", "   \n "], batch_size=5)
    assert [e.start for e in many[1].entities] == starts
    assert many[2].entities == [] and many[3].entities == []


def test_predict_cli_prints_the_design_json(tiny_run: Path, tmp_path: Path, capsys):
    from inference.cli import main

    path = tmp_path / "article.txt"
    path.write_text(UNICODE_ARTICLE, encoding="utf-8")
    assert main(["predict", "--model", str(tiny_run), str(path)]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["id"] == str(path)
    for e in obj["entities"]:
        assert set(e) == {"id", "start", "end", "text", "label", "score"}
        assert UNICODE_ARTICLE[e["start"] : e["end"]] == e["text"]
    ids = {e["id"] for e in obj["entities"]}
    for r in obj["relations"]:
        assert set(r) == {"head", "tail", "label", "score"} and {r["head"], r["tail"]} <= ids
        assert r["label"] in {"Work_For", "OrgBased_In", "Live_In"} and 0.0 <= r["score"] <= 1.0

    lines = tmp_path / "articles.jsonl"
    lines.write_text('{"id": "a", "text": "John Smith in Boston."}\n\n{"id": "b", "text": ""}\n', encoding="utf-8")
    assert main(["predict", "--model", str(tiny_run), "--jsonl", str(lines)]) == 0
    assert [json.loads(x)["id"] for x in capsys.readouterr().out.splitlines()] == ["a", "b"]


def test_predict_cli_rejects_bad_input_with_file_and_line(tiny_run: Path, tmp_path: Path, capsys):
    from inference.cli import main

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "text": "ok"}\n{"id": "b", "text": 3}\n', encoding="utf-8")
    assert main(["predict", "--model", str(tiny_run), "--jsonl", str(bad)]) == 2
    assert f"{bad}:2:" in capsys.readouterr().err
    binary = tmp_path / "latin1.txt"
    binary.write_bytes(b"line one\ncaf\xe9\n")
    assert main(["predict", "--model", str(tiny_run), str(binary)]) == 2
    assert f"{binary}:2: not valid UTF-8" in capsys.readouterr().err


def test_evaluate_cli_writes_metrics_json(tiny_run: Path, tmp_path: Path, capsys):
    from training.cli import main

    out = tmp_path / "metrics.json"
    assert main(["evaluate", "--model", str(tiny_run), "--out", str(out), "--plots", str(tmp_path / "plots")]) == 0
    png = (tmp_path / "plots" / "reliability_sentence.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert "micro" in capsys.readouterr().out
    metrics = json.loads(out.read_text())
    for key in ("data", "model", "encoder", "commit", "machine", "date", "level"):
        assert metrics[key]
    micro = metrics["ner"]["micro"]
    assert 0.0 <= micro["f1"] <= 1.0 and micro["support"] == 6
    assert set(metrics["ner"]["per_type"]) <= {"Loc", "Org", "Peop"}
    rel = metrics["relations"]
    assert rel["strict"]["micro"]["support"] == 2 and rel["gold_entities"]["strict"]["micro"]["support"] == 2
    for table in (rel["thresholds"], metrics["ner"]["thresholds"]):
        assert [row["threshold"] for row in table] == [k / 10 for k in range(1, 10)]
        kept = [row["kept"] for row in table]
        assert kept == sorted(kept, reverse=True) and all(0.0 <= row["precision"] <= 1.0 for row in table)
    cal = metrics["calibration"]
    for key in ("entity_ece", "relation_ece"):
        assert 0.0 <= cal[key] <= 1.0 and 0.0 <= cal["uncalibrated"][key] <= 1.0


def test_missing_data_names_corpus_source_and_setting(tmp_path: Path, capsys):
    from training.cli import main

    assert main(["train", "--config", "configs/conll04.yaml", "--data-root", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    for needle in ("CoNLL04", "github.com/lavis-nlp/spert", "--data-root", "data.root", "conll04/train.json"):
        assert needle in err


@pytest.mark.parametrize("setup", ["missing", "empty", "corrupt", "wrong-version"])
def test_from_pretrained_refuses_what_is_not_a_run(tmp_path: Path, setup: str):
    run = tmp_path / "run"
    if setup != "missing":
        run.mkdir()
    if setup == "corrupt":
        (run / "extractor.json").write_text("{not json")
    if setup == "wrong-version":
        (run / "extractor.json").write_text('{"schema_version": 99}')
    with pytest.raises(RunDirectoryError, match=str(run)):
        NewsExtractor.from_pretrained(run)


def test_evaluate_with_a_label_map_scores_out_of_domain(tiny_run: Path, tmp_path: Path, capsys):
    from training.cli import main

    # A corpus labelled PER/ORG/MISC, as CoNLL-2003 is; the run knows Peop/Org/Loc.
    data = tmp_path / "other.jsonl"
    text = "John Smith works for Acme Corp in Boston with Windows ."
    data.write_text(json.dumps({"id": "a", "text": text, "entities": [
        {"start": 0, "end": 10, "label": "PER"}, {"start": 21, "end": 30, "label": "ORG"},
        {"start": 45, "end": 52, "label": "MISC"}]}) + "\n", encoding="utf-8")
    out = tmp_path / "ood.json"
    args = ["evaluate", "--model", str(tiny_run), "--data", str(data), "--format", "jsonl"]
    assert main([*args, "--label-map", "Peop=PER,Org=ORG", "--out", str(out)]) == 0
    metrics = json.loads(out.read_text())
    assert set(metrics["ner"]["per_type"]) <= {"PER", "ORG"} and metrics["ner"]["micro"]["support"] == 2
    assert metrics["ner"]["micro"]["f1"] > 0, "Peop and Org predictions count once renamed"
    assert "relations" not in metrics and metrics["label_map"] == {"Peop": "PER", "Org": "ORG"}
    assert main([*args, "--label-map", "Peop"]) == 2
    assert "FROM=TO" in capsys.readouterr().err


def test_relation_encoder_can_start_from_the_trained_ner_encoder(tiny_config: Path, tmp_path: Path):
    from training.cli import main

    output = tmp_path / "relinit"
    overrides = ["relations.init=ner", "ner.max_steps=2", "relations.max_steps=2", "relations.epochs=1"]
    assert main(["train", "--config", str(tiny_config), "--output", str(output), *sum((["--set", o] for o in overrides), [])]) == 0
    extractor = NewsExtractor.from_pretrained(output)
    assert extractor.settings["config"]["relations"]["init"] == "ner"
    # The NER encoder carries the word-shape rows, so the relation encoder starts with them too.
    encoder = extractor.relation_tagger.model.encoder
    assert encoder.embeddings.token_type_embeddings.num_embeddings == 5
    assert isinstance(extractor.extract("John Smith works for Acme Corp in Boston .").relations, list)
