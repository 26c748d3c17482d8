"""Experiment configs: YAML files validated at load into dataclasses.

Unknown keys, missing keys and wrongly typed values are reported as `FILE:LINE: reason`.
Command-line overrides (`--set ner.learning_rate=5e-5`) go through the same checks.
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .readers import ANNOTATED_FORMATS, FORMATS


class ConfigError(ValueError):
    """An invalid config; the message names the file and line."""


@dataclass
class DataConfig:
    """Where the corpus is. Relative split paths are read under `root`."""

    format: str = field(metadata={"choices": ANNOTATED_FORMATS})
    train: str
    dev: str
    test: str
    root: str = "../shared/data"
    # A dev label that training never saw is refused ("error": usually a mislabelled split);
    # "allow" keeps it for corpora that have such labels (CrossRE news: win-defeat), where it
    # counts as a miss on dev as it does on test, since no model can predict it.
    unseen_dev_labels: str = field(default="error", metadata={"choices": ("error", "allow")})

    def path(self, split: str) -> Path:
        return Path(self.root) / getattr(self, split)


@dataclass
class OptimConfig:
    """How a model is fine-tuned (training/loop.py)."""

    epochs: int = field(default=10, metadata={"min": 1})
    batch_size: int = field(default=32, metadata={"min": 1})
    learning_rate: float = 1e-4
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    patience: int = field(default=3, metadata={"min": 1})  # epochs without a better dev F1 before stopping
    max_steps: int | None = field(default=None, metadata={"min": 1})  # stop after this many optimizer steps (tests, smoke runs)
    # The word-shape table's own learning rate (inference/casing.py; null: learning_rate). The
    # table starts at zero (or as copies of one token-type row), and at the encoder's rate
    # MPNet's shape rows ended at 2-7% of a word embedding's norm.
    casing_learning_rate: float | None = field(default=None, metadata={"min": 0.0})
    # FGM adversarial training (training/loop.py, `adversarial_step`): each step also learns from
    # its batch read with the word-embedding table moved this far (L2 norm) along the loss's
    # gradient. null: off. Each step reads its batch twice (1.8x the training time with MiniLM).
    adversarial_epsilon: float | None = field(default=None, metadata={"min": 0.0})


@dataclass
class DistillConfig:
    """Knowledge distillation from a trained run's NER model (training/distill.py)."""

    teacher: str  # run directory whose NER model (same entity types) teaches this one
    weight: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})  # share of the loss from the teacher
    # Extra texts that only the teacher labels: a corpus file read under data.root (its
    # annotations, if any, are ignored; format `text`: a folder of raw .txt articles), and how
    # many of its sentences to sample.
    unlabeled: str | None = None
    unlabeled_format: str = field(default="conll2003", metadata={"choices": FORMATS})
    unlabeled_sentences: int = field(default=2000, metadata={"min": 1})


@dataclass
class NerConfig(OptimConfig):
    """Token-classification fine-tuning."""

    max_length: int = 256
    stride: int = 64
    # What a training window holds: single sentences, whole articles cut into windows (each
    # sentence seen with its neighbours), or both. A run trained on sentences alone also reads
    # raw texts sentence by sentence; the others read across sentences (train_ner.reading_spec).
    context: str = field(default="sentence", metadata={"choices": ("sentence", "article", "both")})
    casing: bool = True  # word shapes added to the token embeddings (inference/casing.py)
    distill: DistillConfig | None = None  # learn from a teacher run's tag distributions as well


@dataclass
class RelationConfig(OptimConfig):
    """Relation classification over candidate entity pairs (inference/relations.py)."""

    max_length: int = 128  # tokens per segment (a sentence with its entities marked)
    negative_ratio: float | None = None  # unrelated pairs kept per related pair in a document; null: all
    max_distance: int = 0  # also pair entities of different sentences up to this many characters apart
    type_constraints: bool = True  # only type pairs seen related in training become candidates
    symmetric: list[str] = field(default_factory=list)  # labels that hold in both directions
    dropout: float = 0.1
    context: bool = False  # the classifier also reads the max-pooled tokens between the two entities
    # Start the relation encoder from the pretrained encoder or from the NER model just trained
    # (which already reads names and their types in this corpus).
    init: str = field(default="encoder", metadata={"choices": ("encoder", "ner")})


@dataclass
class CalibrationConfig:
    """Score calibration fitted on dev after training (inference/calibration.py)."""

    # Per-type thresholds stored in the run (`extract(text, min_score="run")`): for each label
    # the least calibrated score whose dev extractions reach this precision.
    target_precision: float = 0.9


@dataclass
class Config:
    """One experiment: which data, which encoder, how to train, where to write the run."""

    name: str
    data: DataConfig
    encoder: str = "minilm"
    seed: int = 13
    output: str | None = None  # default runs/<name>
    mixed_precision: str = field(default="no", metadata={"choices": ("no", "bf16", "fp16")})  # for accelerate
    # Save a training checkpoint every this many steps and at each epoch end (training/checkpoint.py).
    checkpoint_steps: int = field(default=200, metadata={"min": 1})
    ner: NerConfig = field(default_factory=NerConfig)
    relations: RelationConfig | None = None  # absent: entities only
    calibration: CalibrationConfig = field(default_factory=CalibrationConfig)
    # A run of this config trained on train alone: train on train + dev for the epochs at which
    # that run peaked, and take its calibration (training/refit.py). For a final figure only.
    refit: str | None = None

    def output_dir(self) -> Path:
        return Path(self.output or f"runs/{self.name}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class _Loader(yaml.SafeLoader):
    """YAML 1.2 booleans: only true/false. YAML 1.1 also reads yes/no/on/off as booleans, which
    turned `mixed_precision: no` (accelerate's own word) into False."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_config(path: str | Path, overrides: list[str] | None = None) -> Config:
    """Read, override and validate a YAML config."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such config file")
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.load(text, Loader=_Loader)
        lines = _key_lines(yaml.compose(text, Loader=_Loader), path)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        line = mark.line + 1 if mark else 1
        raise ConfigError(f"{path}:{line}: invalid YAML ({getattr(err, 'problem', err)})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: a config is a mapping of keys to values")
    for item in overrides or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"override {item!r}: expected KEY=VALUE, e.g. ner.learning_rate=5e-5")
        node = raw
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r}: {p!r} is not a section")
        node[leaf] = yaml.load(value, Loader=_Loader)
        for k in range(1, len(parents) + 2):  # the key and any section it creates come from the override
            lines.setdefault(".".join([*parents, leaf][:k]), 0)
        lines[key] = 0
    return _build(Config, raw, "", path, lines)


def config_from_dict(raw: dict[str, Any], source: str | Path) -> Config:
    """A config stored as a mapping (a run's `extractor.json`), validated as a YAML one; keys added
    to the code since it was written take their defaults."""
    return _build(Config, raw, "", Path(source), {})


def _key_lines(node: yaml.Node | None, path: Path, prefix: str = "") -> dict[str, int]:
    """Line number (1-based) of each dotted key in a composed YAML document; a key given twice
    in one mapping (YAML would silently keep the last) is an error."""
    out: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            dotted = f"{prefix}{key.value}"
            if dotted in out:
                raise ConfigError(f"{path}:{key.start_mark.line + 1}: duplicate key {dotted!r} (first at line {out[dotted]})")
            out[dotted] = key.start_mark.line + 1
            out.update(_key_lines(value, path, dotted + "."))
    return out


def _where(path: Path, lines: dict[str, int], key: str) -> str:
    line = lines.get(key)
    if line == 0:
        return f"override {key}"
    return f"{path}:{line or 1}"


def _build(cls: type, raw: Any, prefix: str, path: Path, lines: dict[str, int]) -> Any:
    section = prefix.rstrip(".") or "top level"
    if not isinstance(raw, dict):
        raise ConfigError(f"{_where(path, lines, prefix.rstrip('.'))}: {section} must be a mapping")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key in raw:
        if key not in fields:
            raise ConfigError(
                f"{_where(path, lines, prefix + str(key))}: unknown key {key!r} in {section} "
                f"(known: {', '.join(fields)})"
            )
    values = {}
    for name, f in fields.items():
        dotted = prefix + name
        if name not in raw:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise ConfigError(f"{_where(path, lines, prefix.rstrip('.'))}: missing key {dotted!r}")
            continue
        hint = hints[name]
        section_type = next((t for t in typing.get_args(hint) or (hint,) if dataclasses.is_dataclass(t)), None)
        if section_type is not None and raw[name] is not None:
            values[name] = _build(section_type, raw[name], dotted + ".", path, lines)
        else:
            values[name] = _check(raw[name], hint, dotted, _where(path, lines, dotted))
            choices, minimum, maximum = f.metadata.get("choices"), f.metadata.get("min"), f.metadata.get("max")
            if choices and values[name] not in choices:
                raise ConfigError(f"{_where(path, lines, dotted)}: {dotted} must be one of {', '.join(choices)}, got {values[name]!r}")
            if minimum is not None and values[name] is not None and values[name] < minimum:
                raise ConfigError(f"{_where(path, lines, dotted)}: {dotted} must be at least {minimum}, got {values[name]!r}")
            if maximum is not None and values[name] is not None and values[name] > maximum:
                raise ConfigError(f"{_where(path, lines, dotted)}: {dotted} must be at most {maximum}, got {values[name]!r}")
    return cls(**values)


def _check(value: Any, hint: Any, key: str, where: str) -> Any:
    allowed = typing.get_args(hint) if isinstance(hint, types.UnionType) else (hint,)
    if value is None and type(None) in allowed:
        return None
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{where}: {key} must be a list, got {value!r}")
        return [_check(v, item, f"{key}[{k}]", where) for k, v in enumerate(value)]
    for t in allowed:
        if t is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if t is float and isinstance(value, str):
            try:  # PyYAML reads 2e-4 (no dot) as a string
                return float(value)
            except ValueError:
                pass
        if t is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if t in (str, bool) and isinstance(value, t):
            return value
    names = " or ".join("null" if t is type(None) else t.__name__ for t in allowed)
    raise ConfigError(f"{where}: {key} must be {names}, got {value!r}")
