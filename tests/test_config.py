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
    ],
)
def test_errors_name_file_and_line(tmp_path: Path, text: str, overrides: list[str], message: str):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, text), overrides)
    assert message in str(err.value)


def test_shipped_configs_load():
    for path in sorted(Path("configs").glob("*.yaml")):
        assert load_config(path).name == path.stem
