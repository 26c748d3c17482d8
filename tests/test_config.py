"""Configs are validated at load: unknown keys, wrong types and missing keys name file and line."""
from __future__ import annotations

from pathlib import Path

import pytest

from training.config import ConfigError, load_config

GOOD = """name: x
data:
  format: spert
  train: a.json
  dev: b.json
  test: c.json
ner:
  epochs: 3
  learning_rate: 2e-4
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_good_config_and_overrides(tmp_path: Path):
    config = load_config(write(tmp_path, GOOD), ["ner.batch_size=4", "seed=3"])
    assert config.ner.epochs == 3 and config.ner.learning_rate == 2e-4 and config.ner.batch_size == 4
    assert config.seed == 3 and config.output_dir() == Path("runs/x")


def test_yes_and_no_are_words_not_booleans(tmp_path: Path):
    """YAML 1.1 reads `no` as False; accelerate's own name for full precision is "no"."""
    assert load_config(write(tmp_path, GOOD + "mixed_precision: no\n")).mixed_precision == "no"
    assert load_config(write(tmp_path, GOOD), ["mixed_precision=no", "ner.casing=false"]).ner.casing is False


@pytest.mark.parametrize(
    "text,overrides,message",
    [
        (GOOD.replace("  epochs: 3", "  epochs: 3\n  epochz: 4"), [], "c.yaml:9: unknown key 'epochz' in ner"),
        (GOOD.replace("epochs: 3", "epochs: three"), [], "c.yaml:8: ner.epochs must be int, got 'three'"),
        (GOOD.replace("  dev: b.json\n", ""), [], "c.yaml:2: missing key 'data.dev'"),
        (GOOD.replace("format: spert", "format: xml"), [], "c.yaml:3: data.format must be one of"),
        (GOOD + "seed: [1]\n", [], "c.yaml:10: seed must be int"),
        (GOOD, ["ner.epochs"], "expected KEY=VALUE"),
        (GOOD, ["ner.nope=1"], "override ner.nope: unknown key 'nope'"),
        ("name: [unclosed\n", [], "c.yaml:2: invalid YAML"),
        (GOOD + "relations: 5\n", [], "c.yaml:10: relations must be a mapping"),
        (GOOD + "relations:\n  symmetric: [1]\n", [], "c.yaml:11: relations.symmetric[0] must be str, got 1"),
        (GOOD.replace("epochs: 3", "epochs: true"), [], "c.yaml:8: ner.epochs must be int, got True"),
        (GOOD.replace("epochs: 3", "epochs: 0"), [], "c.yaml:8: ner.epochs must be at least 1, got 0"),
        (GOOD + "checkpoint_steps: 0\n", [], "c.yaml:10: checkpoint_steps must be at least 1"),
        (GOOD + "name: y\n", [], "c.yaml:10: duplicate key 'name' (first at line 1)"),
        (GOOD, ["nosuch.x=1"], "override nosuch: unknown key 'nosuch' in top level"),
        (GOOD, ["ner.batch_size=-4"], "override ner.batch_size: ner.batch_size must be at least 1, got -4"),
        ("- a\n- b\n", [], "c.yaml:1: a config is a mapping"),
        (GOOD, ["ner.casing=yes"], "override ner.casing: ner.casing must be bool, got 'yes'"),
        (GOOD, ["ner.distill.weight=0.5"], "override ner.distill: missing key 'ner.distill.teacher'"),
        (GOOD, ["ner.distill.teacher=runs/t", "ner.distill.weight=1.5"], "ner.distill.weight must be at most 1.0, got 1.5"),
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, overrides: list[str], message: str):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), overrides)
    assert message in str(err.value)


def test_shipped_configs_load():
    for path in sorted(Path("configs").glob("*.yaml")):
        assert load_config(path).name == path.stem


def data_with_unseen_dev_label(tiny_config: Path, tmp_path: Path, kind: str) -> Path:
    """A copy of the tiny corpus whose dev split has an entity type (Misc) or relation label
    (Kill) that training never saw; returns its data root."""
    import json

    data = tmp_path / "data"
    (data / "tiny").mkdir(parents=True)
    root = Path(yaml_value(tiny_config, "root"))
    for split in ("train", "test"):
        (data / "tiny" / f"{split}.json").write_bytes((root / "tiny" / f"{split}.json").read_bytes())
    dev = json.loads((root / "tiny" / "dev.json").read_text())
    if kind == "entity type":
        dev[1]["entities"][0]["type"] = "Misc"
    else:
        dev[1]["relations"][0]["type"] = "Kill"
    (data / "tiny" / "dev.json").write_text(json.dumps(dev), encoding="utf-8")
    return data


@pytest.mark.parametrize("kind", ["entity type", "relation label"])
def test_a_dev_label_unknown_to_training_names_file_and_document(tiny_config: Path, tmp_path: Path, capsys, kind: str):
    from training.cli import main

    data = data_with_unseen_dev_label(tiny_config, tmp_path, kind)
    assert main(["train", "--config", str(tiny_config), "--data-root", str(data), "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"{data / 'tiny' / 'dev.json'}: document '1#s0' has the {kind} {'Misc' if kind == 'entity type' else 'Kill'!r}" in err
    assert "never occurs in the training split" in err and not (tmp_path / "run").exists()
    assert "set data.unseen_dev_labels: allow" in err


def test_allowed_unseen_dev_labels_are_reported_not_refused(tiny_config: Path, tmp_path: Path, capsys):
    from inference.schema import sentence_documents
    from training.corpora import data_root, load_split
    from training.train import check_dev_labels

    data = data_with_unseen_dev_label(tiny_config, tmp_path, "relation label")
    config = load_config(tiny_config, ["data.unseen_dev_labels=allow"])
    config = data_root(config, str(data))  # as the CLI's --data-root does
    assert config.data.unseen_dev_labels == "allow"
    train, dev_docs = (sentence_documents(load_split(config.data, s)) for s in ("train", "dev"))
    check_dev_labels(config, train, dev_docs, print)
    assert "relation labels never seen in training, kept as misses (data.unseen_dev_labels: allow): Kill (1)" in capsys.readouterr().out


def yaml_value(path: Path, key: str) -> str:
    """A top-level or nested scalar of a YAML file, by key name."""
    return next(line.split(":", 1)[1].strip() for line in path.read_text().splitlines() if line.strip().startswith(f"{key}:"))


def test_evaluating_on_labels_the_run_does_not_know_names_file_document_and_the_fix(tiny_run: Path, tmp_path: Path, capsys):
    import json

    from training.cli import main

    data = tmp_path / "other.jsonl"
    data.write_text(json.dumps({"id": "a7", "text": "John Smith", "entities": [{"start": 0, "end": 10, "label": "PER"}]}) + "\n")
    assert main(["evaluate", "--model", str(tiny_run), "--data", str(data), "--format", "jsonl"]) == 2
    err = capsys.readouterr().err
    assert f"{data}: document 'a7' has the entity type 'PER', unknown to the run" in err and "--label-map" in err
