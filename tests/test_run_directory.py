"""Loading a run directory: anything missing, corrupt, incompatible, half-written or pickled is
refused with a RunDirectoryError that says which file and what is wrong; labels survive."""
from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from pathlib import Path

import pytest

from inference import NewsExtractor, RunDirectoryError
from training.train import write_run


def clone(run: Path, target: Path) -> Path:
    """A copy of a run made of hard links (fast); `rewrite` any file before changing it."""
    shutil.copytree(run, target, copy_function=os.link)
    return target


def rewrite(path: Path, data: bytes) -> None:
    """Replace a file of a clone without touching the original it is linked to."""
    path.unlink()
    path.write_bytes(data)


def edit_settings(run: Path, change) -> None:
    settings = json.loads((run / "extractor.json").read_text())
    change(settings)
    rewrite(run / "extractor.json", json.dumps(settings).encode())


def rename_peop(settings: dict) -> None:
    settings["entity_labels"] = settings["relations"]["entity_types"] = ["Loc", "Org", "Per"]


def truncate(path: Path) -> None:
    rewrite(path, path.read_bytes()[: path.stat().st_size // 2])


CASES = {
    "truncated NER weights": (lambda r: truncate(r / "ner" / "model.safetensors"), "ner: cannot load the model"),
    "truncated relation weights": (lambda r: truncate(r / "relations" / "model.safetensors"), "relations: cannot load the model"),
    "truncated relation head": (lambda r: truncate(r / "relations" / "head.safetensors"), "relations: cannot load the model"),
    "bad JSON in the model config": (lambda r: rewrite(r / "ner" / "config.json", b"{oops"), "ner: cannot load the model"),
    "truncated settings": (lambda r: truncate(r / "extractor.json"), "corrupt settings file"),
    "wrong schema_version": (lambda r: edit_settings(r, lambda s: s.update(schema_version=2)), "schema_version 2 is not supported"),
    "labels not those of the NER head": (lambda r: edit_settings(r, rename_peop), "the NER model's labels ['Loc', 'Org', 'Peop'] differ"),
    "relation labels not those of the head": (lambda r: edit_settings(r, lambda s: s["relations"]["labels"].append("Kill")),
                                              "relations: cannot load the model"),
    "relation entity types not the entity labels": (lambda r: edit_settings(r, lambda s: s["relations"].update(entity_types=["Loc"])),
                                                    "the relation model's entity types ['Loc'] differ"),
    "window of the wrong type": (lambda r: edit_settings(r, lambda s: s.update(window=256)), "'window' must be dict, got 256"),
    "window too small": (lambda r: edit_settings(r, lambda s: s.update(window={"max_length": 4, "stride": 0})),
                         "invalid window or relations settings (max_length must be at least 8"),
    "sentence windows not a boolean": (lambda r: edit_settings(r, lambda s: s["window"].update(sentences="yes")),
                                       "invalid window or relations settings (sentences must be true or false, got 'yes')"),
    "unknown relations key": (lambda r: edit_settings(r, lambda s: s["relations"].update(colour="red")), "invalid window or relations settings"),
    "labels missing": (lambda r: edit_settings(r, lambda s: s.pop("entity_labels")), "the key 'entity_labels' is missing"),
    "relation model missing": (lambda r: shutil.rmtree(r / "relations"), "relations: model.safetensors is missing"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_run_is_refused_clearly(tiny_run: Path, tmp_path: Path, case: str):
    damage, message = CASES[case]
    run = clone(tiny_run, tmp_path / "run")
    damage(run)
    with pytest.raises(RunDirectoryError) as err:
        NewsExtractor.from_pretrained(run)
    assert str(run) in str(err.value) and message in str(err.value), str(err.value)


def test_labels_survive_save_and_load_for_relations_too(tiny_run: Path):
    extractor = NewsExtractor.from_pretrained(tiny_run)
    settings = json.loads((tiny_run / "extractor.json").read_text())
    schema = extractor.relation_tagger.schema
    assert schema.labels == ["Live_In", "OrgBased_In", "Work_For"] == settings["relations"]["labels"]
    assert schema.entity_types == ["Loc", "Org", "Peop"] and schema.allowed == settings["relations"]["allowed"]
    assert extractor.relation_tagger.model.classifier.out_features == len(schema.labels) + 1
    found = {r.label for r in extractor.extract("John Smith works for Acme Corp in Boston .").relations}
    assert found and found <= set(schema.labels)


class PlantedPickle:
    """Unpickling this writes a file: proof that a pickle was loaded."""

    def __init__(self, proof: Path) -> None:
        self.proof = proof

    def __reduce__(self):
        return (Path.write_text, (self.proof, "pickle code ran"))


@pytest.mark.parametrize("part", ["ner", "relations"])
def test_planted_pickles_are_never_loaded(tiny_run: Path, tmp_path: Path, part: str):
    run = clone(tiny_run, tmp_path / "run")
    proof = tmp_path / "proof.txt"
    for name in ("pytorch_model.bin", "training_args.bin", "optimizer.pt"):
        (run / part / name).write_bytes(pickle.dumps(PlantedPickle(proof)))
    # Beside safetensors the pickles are ignored ...
    extractor = NewsExtractor.from_pretrained(run)
    assert extractor.extract("John Smith works for Acme Corp in Boston .").entities is not None
    assert not proof.exists()
    # ... and without safetensors the run is refused, naming them.
    (run / part / "model.safetensors").unlink()
    with pytest.raises(RunDirectoryError, match=r"model\.safetensors is missing .*pytorch_model\.bin.* refused"):
        NewsExtractor.from_pretrained(run)
    assert not proof.exists()


def test_no_torch_load_without_weights_only():
    import inference

    root = Path(inference.__file__).resolve().parents[1]
    sources = [p for d in ("inference", "training", "benchmarks", "scripts") for p in (root / d).rglob("*.py")]
    assert sources
    for path in sources:
        for call in re.findall(r"torch\.load\([^)]*\)", path.read_text(encoding="utf-8")):
            assert "weights_only=True" in call, f"{path}: {call}"
        assert "import pickle" not in path.read_text(encoding="utf-8"), f"{path} imports pickle"


def test_a_half_written_run_never_loads(tiny_run: Path, tmp_path: Path, monkeypatch):
    from inference.relations import RelationModel

    extractor = NewsExtractor.from_pretrained(tiny_run)
    output = tmp_path / "runs" / "tiny"
    relations = (extractor.relation_tagger.model, extractor.relation_tagger.tokenizer)
    ner = (extractor.tagger.model, extractor.tagger.tokenizer)
    write_run(output, ner, relations, extractor.settings, extractor.known_mentions)  # a complete run to be replaced
    before = (output / "extractor.json").read_bytes()

    def crash(self, directory: Path) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(RelationModel, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        write_run(output, ner, relations, {**extractor.settings, "encoder": "changed"}, extractor.known_mentions)
    assert (output / "extractor.json").read_bytes() == before, "the previous run is untouched"
    NewsExtractor.from_pretrained(output)
    staging = output.with_name(".tiny.partial")
    assert staging.is_dir()
    with pytest.raises(RunDirectoryError, match="half-written run"):
        NewsExtractor.from_pretrained(staging)
    # Even complete-looking staging content never loads under its staging name.
    shutil.copy(output / "extractor.json", staging / "extractor.json")
    with pytest.raises(RunDirectoryError, match="half-written run"):
        NewsExtractor.from_pretrained(staging)
