"""Shared fixtures: the MiniLM tokenizer, a tiny corpus written for the tests, one tiny trained run."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may touch the network

# Small CoNLL04-like sentences in SpERT JSON: entities as token ranges, end exclusive.
SENTENCES = [
    (["John", "Smith", "works", "for", "Acme", "Corp", "in", "Boston", "."],
     [(0, 2, "Peop"), (4, 6, "Org"), (7, 8, "Loc")], [(0, 1, "Work_For"), (1, 2, "OrgBased_In")]),
    (["Maria", "Lopez", "lives", "in", "Paris", "since", "Monday", "."],
     [(0, 2, "Peop"), (4, 5, "Loc")], [(0, 1, "Live_In")]),
    (["The", "United", "Nations", "met", "in", "Geneva", "."],
     [(1, 3, "Org"), (5, 6, "Loc")], [(0, 1, "OrgBased_In")]),
    (["Ahmed", "Hassan", "leads", "Qatar", "Airways", "."],
     [(0, 2, "Peop"), (3, 5, "Org")], [(0, 1, "Work_For")]),
    (["Reuters", "reported", "from", "London", "yesterday", "."],
     [(0, 1, "Org"), (3, 4, "Loc")], []),
    (["Peter", "Blackburn", "lives", "in", "Brussels", "."],
     [(0, 2, "Peop"), (4, 5, "Loc")], [(0, 1, "Live_In")]),
]


def write_spert(path: Path, sentences: list) -> None:
    items = [
        {
            "tokens": toks,
            "entities": [{"start": s, "end": e, "type": t} for s, e, t in ents],
            "relations": [{"head": h, "tail": t, "type": r} for h, t, r in rels],
        }
        for toks, ents, rels in sentences
    ]
    path.write_text(json.dumps(items), encoding="utf-8")


@pytest.fixture(scope="session")
def tokenizer():
    from transformers import AutoTokenizer

    from inference.encoders import resolve_encoder

    return AutoTokenizer.from_pretrained(resolve_encoder("minilm"))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    (root / "tiny").mkdir()
    write_spert(root / "tiny" / "train.json", SENTENCES * 4)
    write_spert(root / "tiny" / "dev.json", SENTENCES[:3])
    write_spert(root / "tiny" / "test.json", SENTENCES[3:])
    return root


@pytest.fixture(scope="session")
def tiny_config(tiny_data, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("configs") / "tiny.yaml"
    path.write_text(
        f"""name: tiny
encoder: minilm
seed: 7
data:
  format: spert
  root: {tiny_data}
  train: tiny/train.json
  dev: tiny/dev.json
  test: tiny/test.json
ner:
  max_length: 32
  stride: 8
  epochs: 2
  batch_size: 8
  learning_rate: 3.0e-4
  warmup_ratio: 0.0
  patience: 2
relations:
  max_length: 48
  epochs: 6
  batch_size: 8
  learning_rate: 5.0e-4
  warmup_ratio: 0.0
  patience: 3
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture(scope="session")
def tiny_run(tiny_config, tmp_path_factory) -> Path:
    """A run trained for a few steps through the real command line."""
    from training.cli import main

    output = tmp_path_factory.mktemp("runs") / "tiny"
    assert main(["train", "--config", str(tiny_config), "--output", str(output)]) == 0
    return output
