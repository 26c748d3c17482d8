"""The public API: `NewsExtractor.from_pretrained(run_dir).extract(text)`.

A run directory (written by `python -m training train`) holds `ner/` (a `save_pretrained`
token-classification model with its tokenizer), `relations/` where the run has a relation model,
`extractor.json` (schema version, labels, window settings, encoder, training config, data
digests, calibration, per-type thresholds) and `known_mentions.json` (the names the training
data annotated, per type, which the entity calibration tells apart from new names).
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from .calibration import apply_platt, mention_key, relation_score
from .casing import load_shape_table
from .ensemble import MeanOfModels, member_dirs, mismatched_settings
from .ner import NerTagger
from .onnx_backend import BACKENDS, ONNX_DIR
from .relations import RelationModel, RelationSchema, RelationTagger
from .schema import Article
from .windows import WindowSpec, tokenize

SCHEMA_VERSION = 1
SETTINGS_FILE = "extractor.json"
MENTIONS_FILE = "known_mentions.json"
MinScore = float | Mapping[str, float] | str | None  # a floor for all, one per label, or "run"


# The keys of extractor.json that loading needs, and their JSON types.
_SETTINGS_TYPES = {"entity_labels": list, "window": dict, "encoder": str, "casing": bool}


class RunDirectoryError(ValueError):
    """The directory is not a usable run; the message says what is wrong with it."""


def read_settings(run_dir: Path) -> dict[str, Any]:
    """Load and check `extractor.json` of a run directory."""
    if not run_dir.is_dir():
        raise RunDirectoryError(f"{run_dir}: no such run directory (train one with `python -m training train`)")
    if run_dir.name.endswith(".partial"):
        raise RunDirectoryError(f"{run_dir}: a half-written run (training stopped while writing it); train again")
    path = run_dir / SETTINGS_FILE
    if not path.is_file():
        raise RunDirectoryError(f"{run_dir}: not a run directory, {SETTINGS_FILE} is missing")
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise RunDirectoryError(f"{path}: corrupt settings file ({err})") from None
    if not isinstance(settings, dict) or settings.get("schema_version") != SCHEMA_VERSION:
        found = settings.get("schema_version") if isinstance(settings, dict) else None
        raise RunDirectoryError(f"{path}: schema_version {found!r} is not supported (this code reads {SCHEMA_VERSION})")
    for key, kind in _SETTINGS_TYPES.items():
        if key not in settings:
            raise RunDirectoryError(f"{path}: the key {key!r} is missing")
        if not isinstance(settings[key], kind):
            raise RunDirectoryError(f"{path}: {key!r} must be {kind.__name__}, got {settings[key]!r}")
    try:
        WindowSpec(**settings["window"])
        schema = RelationSchema.from_dict(settings["relations"]) if settings.get("relations") else None
    except (TypeError, ValueError) as err:
        raise RunDirectoryError(f"{path}: invalid window or relations settings ({err})") from None
    if schema is not None and sorted(schema.entity_types) != sorted(settings["entity_labels"]):
        raise RunDirectoryError(
            f"{path}: the relation model's entity types {schema.entity_types} differ from entity_labels {settings['entity_labels']}"
        )
    return settings


class NewsExtractor:
    """Entities (and, where the run has a relation model, relations) with character offsets and scores."""

    def __init__(self, tagger: NerTagger, settings: dict[str, Any], relation_tagger: RelationTagger | None = None) -> None:
        self.tagger = tagger
        self.settings = settings
        self.relation_tagger = relation_tagger
        self.calibration: dict[str, Any] = {}  # raw scores until set_calibration
        self.known_mentions: dict[str, set[str]] = {}  # label -> mention_key of each training name

    @classmethod
    def from_pretrained(
        cls,
        run_dir: str | Path,
        device: str | None = None,
        calibrated: bool = True,
        backend: str = "torch",
        onnx_dir: str | Path | None = None,
        relations: bool = True,
    ) -> NewsExtractor:
        """Load a run directory; a clear `RunDirectoryError` if it is not one.

        `calibrated=False` gives the raw scores (inference.calibration), for comparison.
        `backend` "onnx" or "onnx-int8" runs the encoders' forward passes on ONNX Runtime (CPU)
        from graphs written by `python -m inference export-onnx` into `onnx_dir` (default
        RUN/onnx); everything else is the same code as with "torch". `relations=False` loads
        the entity model only (entities without relations, faster).
        """
        run_dir = Path(run_dir)
        settings = read_settings(run_dir)
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
        if backend != "torch" and device not in (None, "cpu"):
            raise ValueError(f"the {backend} backend runs on CPU only, not on {device!r}")
        device = "cpu" if backend != "torch" else device or ("cuda" if torch.cuda.is_available() else "cpu")
        encoder = _encoder_loader(backend, Path(onnx_dir) if onnx_dir else run_dir / ONNX_DIR)
        runs = _model_runs(run_dir, settings, backend)
        tokenizer, model = _load_part(runs, "ner", lambda d: encoder(d, "ner"))
        labels = sorted({label.split("-", 1)[1] for label in model.config.id2label.values() if label != "O"})
        if labels != sorted(settings["entity_labels"]):
            raise RunDirectoryError(
                f"{run_dir}: the NER model's labels {labels} differ from {SETTINGS_FILE}'s {settings['entity_labels']}"
            )
        tagger = NerTagger(model.to(device), tokenizer, WindowSpec(**settings["window"]), settings["casing"])
        relation_tagger = None
        if relations and settings.get("relations"):
            schema = RelationSchema.from_dict(settings["relations"])
            rel_tokenizer, rel_model = _load_part(
                runs, "relations", lambda d: RelationModel.load(d, schema, encoder(d, "relations"))
            )
            relation_tagger = RelationTagger(rel_model.to(device), rel_tokenizer, schema, settings["casing"])
        extractor = cls(tagger, settings, relation_tagger)
        extractor.known_mentions = read_known_mentions(run_dir)
        if calibrated:
            calibration = settings.get("calibration") or {}
            if relation_tagger is not None and "relation_platt" in calibration:
                raise RunDirectoryError(
                    f"{run_dir}: its relation calibration (relation_platt, a map of one score) is of a kind this code no longer "
                    f"applies; fit the current one with `python -m training calibrate --model {run_dir}`"
                )
            extractor.set_calibration(calibration)
        return extractor

    def set_calibration(self, calibration: dict[str, Any]) -> None:
        """Apply a fitted calibration (inference.calibration); {} restores the raw scores."""
        self.calibration = calibration
        self.tagger.temperature = calibration.get("ner_temperature", 1.0)
        if self.relation_tagger is not None:
            self.relation_tagger.temperature = calibration.get("relation_temperature", 1.0)

    @property
    def entity_labels(self) -> list[str]:
        return list(self.settings["entity_labels"])

    def extract(self, text: str, id: str = "0", min_score: MinScore = None) -> Article:
        """Entities and relations of one text of any length (those scoring under `min_score` left out)."""
        return self.extract_many([text], ids=[id], min_score=min_score)[0]

    def extract_many(
        self, texts: list[str], batch_size: int = 32, ids: list[str] | None = None, min_score: MinScore = None
    ) -> list[Article]:
        """Entities and relations of many texts; windows and relation candidates of all texts are
        batched together.

        `min_score` leaves out what scores under it, and relations whose entities are left out:
        one number for every label, a mapping label -> number (labels it lacks are kept), or
        "run" for the per-type thresholds the run stores (chosen on dev for a target precision).
        By default (None) the run's decision floors apply: one for entities and one for
        relations, chosen on dev for the best F1 (`python -m training calibrate`); 0 keeps all.
        """
        floor = self.score_floor(min_score)
        articles = self.predict_articles(texts, batch_size, ids)
        for article in articles:
            self.score(article)
            if floor is not None:
                keep_confident(article, floor, keep_related=min_score is None)
        return articles

    def predict_articles(self, texts: list[str], batch_size: int = 32, ids: list[str] | None = None) -> list[Article]:
        """Articles as the models give them, before `score`: an entity's score is the mean
        probability of its word tags, a relation's the probability of its label."""
        if isinstance(texts, str):  # it would be read as one text per character
            raise TypeError("texts is a str: extract_many takes a list of texts; extract takes one text")
        for k, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {k} is a {type(text).__name__}, not a str")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            # range(0, n, 0) raises a puzzle, and a negative step reads no window at all: every text "has no entities"
            raise ValueError(f"batch_size must be a whole number of at least 1, got {batch_size!r}")
        ids = ids or [str(k) for k in range(len(texts))]
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids given for {len(texts)} texts")
        tokenized = tokenize(self.tagger.tokenizer, texts)
        entities = self.tagger.predict(texts, batch_size=batch_size, tokenized=tokenized)
        relations = (
            self.relation_tagger.predict(texts, tokenized, entities, batch_size=2 * batch_size)
            if self.relation_tagger
            else [[] for _ in texts]
        )
        return [Article(i, t, e, r) for i, t, e, r in zip(ids, texts, entities, relations)]

    def score(self, article: Article) -> Article:
        """The scores of an article from `predict_articles` (in place; returned for convenience):
        entities through their known/new map, then relations from their label probability and
        their entities' scores (inference.calibration); raw scores where the run is uncalibrated."""
        entity_maps = self.calibration.get("entity_platt")
        for e in article.entities if entity_maps else []:
            e.score = apply_platt(e.score, entity_maps.get(self.mention_group(e.text, e.label), entity_maps["all"]))
        scores = {e.id: e.score for e in article.entities}
        for r in article.relations:
            r.score = relation_score(r.score, scores[r.head], scores[r.tail], self.calibration.get("relation_map"))
        return article

    def mention_group(self, text: str, label: str) -> str:
        """"known" if the training data annotated this name with this label, else "new"."""
        return "known" if mention_key(text) in self.known_mentions.get(label, ()) else "new"

    def score_floor(self, min_score: MinScore) -> Callable[[str], float] | None:
        """The least score kept for each label, from `min_score` (see `extract_many`); checked here
        so that a bad value fails before any work."""
        if min_score is None:
            decision = self.calibration.get("decision")
            if not decision:
                return None  # raw scores, or a run calibrated before decision floors existed
            entity_labels = set(self.entity_labels)
            return lambda label: decision["entities" if label in entity_labels else "relations"]["min_score"]
        if isinstance(min_score, str):
            if min_score != "run":
                raise ValueError(f'min_score must be a number, a mapping label -> number or "run", got {min_score!r}')
            stored = self.calibration.get("thresholds")
            if not stored:
                raise ValueError('min_score="run": this run stores no per-type thresholds (fit them with `python -m training calibrate`)')
            min_score = {label: t["min_score"] for kind in ("entities", "relations") for label, t in stored[kind].items()}
        if isinstance(min_score, Mapping):
            known = set(self.entity_labels) | set(self.relation_tagger.schema.labels if self.relation_tagger else [])
            unknown = sorted(set(min_score) - known)
            if unknown:
                raise ValueError(f"min_score: unknown labels {unknown} (this run's labels: {sorted(known)})")
            floors = {label: _check_floor(value, f"min_score[{label!r}]") for label, value in min_score.items()}
            return lambda label: floors.get(label, 0.0)
        value = _check_floor(min_score, "min_score")
        return lambda label: value


def _check_floor(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{what} must be a number in [0, 1], got {value!r}")
    return float(value)


def read_known_mentions(run_dir: Path) -> dict[str, set[str]]:
    """The training names per label (`known_mentions.json`); none for runs written without one."""
    path = run_dir / MENTIONS_FILE
    if not path.is_file():
        return {}
    try:
        mentions = json.loads(path.read_text(encoding="utf-8"))["mentions"]
        return {str(label): set(map(str, names)) for label, names in mentions.items()}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as err:
        raise RunDirectoryError(f"{path}: corrupt file ({type(err).__name__}: {err})") from None


def known_mentions_json(mentions: dict[str, set[str]]) -> str:
    """The content of `known_mentions.json`."""
    payload = {"key": "lower case, spaces collapsed", "mentions": {label: sorted(names) for label, names in sorted(mentions.items())}}
    return json.dumps(payload, ensure_ascii=False, indent=1) + "\n"


def keep_confident(article: Article, floor: Callable[[str], float], keep_related: bool = False) -> Article:
    """Leave out the article's entities and relations scoring under their label's floor
    (`NewsExtractor.score_floor`), and the relations of entities left out (in place; the article
    is returned for convenience). `keep_related` (the default output's decision floors) keeps
    the entities of relations kept instead: a relation's score already counts its entities' (on
    CoNLL04 dev and test this gave both better entity and better relation F1)."""
    article.relations = [r for r in article.relations if r.score >= floor(r.label)]
    related = {i for r in article.relations for i in (r.head, r.tail)} if keep_related else set()
    article.entities = [e for e in article.entities if e.score >= floor(e.label) or e.id in related]
    kept = {e.id for e in article.entities}
    article.relations = [r for r in article.relations if r.head in kept and r.tail in kept]
    return article


def _encoder_loader(backend: str, onnx_dir: Path) -> Any:
    """(part directory, part name) -> the part's forward: the torch NER model, or None (the relation
    encoder loads with its model), or for the onnx backends the part's `OnnxEncoder`."""
    if backend != "torch":
        from .onnx_backend import OnnxEncoder  # onnxruntime only when asked for

        return lambda d, part: OnnxEncoder.load(onnx_dir, d, part, quantized=backend == "onnx-int8")
    return lambda d, part: (
        load_shape_table(AutoModelForTokenClassification.from_pretrained(d, use_safetensors=True), d) if part == "ner" else None
    )


def _model_runs(run_dir: Path, settings: dict[str, Any], backend: str) -> list[Path]:
    """The runs holding the models: the run itself, or an ensemble's members (checked alike)."""
    if not settings.get("members"):
        return [run_dir]
    if backend != "torch":
        raise ValueError(f"{run_dir} is an ensemble: ensembles run on the torch backend only, not {backend!r}")
    runs = member_dirs(run_dir, settings)
    for member in runs:
        differing = mismatched_settings(settings, read_settings(member))
        if differing:
            raise RunDirectoryError(f"{run_dir}: member {member} differs from the ensemble in {', '.join(differing)}")
    return runs


def _load_part(runs: list[Path], part: str, load: Any) -> tuple[Any, Any]:
    """Tokenizer and model of one part (ner/ or relations/) of the runs, safetensors weights
    only; several runs (an ensemble's members) give one `MeanOfModels`."""
    models = []
    for directory in (run / part for run in runs):
        if not (directory / "model.safetensors").is_file():
            pickles = sorted(p.name for p in directory.glob("*.bin")) + sorted(p.name for p in directory.glob("*.pt*"))
            refused = f"; {', '.join(pickles)} refused: pickle files can run code and are never loaded" if pickles else ""
            raise RunDirectoryError(f"{directory}: model.safetensors is missing (weights load only from safetensors){refused}")
        try:
            models.append(load(directory))
        except Exception as err:  # noqa: BLE001 - corrupt JSON, truncated safetensors, shape mismatches: one clear error
            raise RunDirectoryError(f"{directory}: cannot load the model ({type(err).__name__}: {err})") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(runs[0] / part)
    except Exception as err:  # noqa: BLE001
        raise RunDirectoryError(f"{runs[0] / part}: cannot load the tokenizer ({type(err).__name__}: {err})") from None
    return tokenizer, models[0] if len(models) == 1 else MeanOfModels(models)
