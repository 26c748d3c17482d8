"""The public API: `NewsExtractor.from_pretrained(run_dir).extract(text)`.

A run directory (written by `python -m training train`) holds `ner/` (a `save_pretrained`
token-classification model with its tokenizer) and `extractor.json` (schema version, labels,
window settings, encoder, training config, data digests).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForTokenClassification, AutoTokenizer

from .calibration import apply_isotonic
from .ner import NerTagger
from .onnx_backend import BACKENDS, ONNX_DIR
from .relations import RelationModel, RelationSchema, RelationTagger
from .schema import Article
from .windows import WindowSpec, tokenize

SCHEMA_VERSION = 1
SETTINGS_FILE = "extractor.json"


class RunDirectoryError(ValueError):
    """The directory is not a usable run; the message says what is wrong with it."""


def read_settings(run_dir: Path) -> dict[str, Any]:
    """Load and check `extractor.json` of a run directory."""
    if not run_dir.is_dir():
        raise RunDirectoryError(f"{run_dir}: no such run directory (train one with `python -m training train`)")
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
    for key in ("entity_labels", "window", "encoder", "casing"):
        if key not in settings:
            raise RunDirectoryError(f"{path}: the key {key!r} is missing")
    return settings


class NewsExtractor:
    """Entities (and, where the run has a relation model, relations) with character offsets and scores."""

    def __init__(self, tagger: NerTagger, settings: dict[str, Any], relation_tagger: RelationTagger | None = None) -> None:
        self.tagger = tagger
        self.settings = settings
        self.relation_tagger = relation_tagger
        self.calibration: dict[str, Any] = {}  # raw scores until set_calibration

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
        tokenizer, model = _load_part(run_dir / "ner", lambda d: encoder(d, "ner"))
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
                run_dir / "relations", lambda d: RelationModel.load(d, len(schema.labels) + 1, encoder(d, "relations"))
            )
            relation_tagger = RelationTagger(rel_model.to(device), rel_tokenizer, schema, settings["casing"])
        extractor = cls(tagger, settings, relation_tagger)
        if calibrated:
            extractor.set_calibration(settings.get("calibration") or {})
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

    def extract(self, text: str, id: str = "0", min_score: float | None = None) -> Article:
        """Entities and relations of one text of any length (those scoring under `min_score` left out)."""
        return self.extract_many([text], ids=[id], min_score=min_score)[0]

    def extract_many(
        self, texts: list[str], batch_size: int = 32, ids: list[str] | None = None, min_score: float | None = None
    ) -> list[Article]:
        """Entities and relations of many texts; windows and relation candidates of all texts are
        batched together. With `min_score`, entities and relations scoring under it are left out,
        and so are relations whose entities are."""
        if min_score is not None and not 0.0 <= min_score <= 1.0:
            raise ValueError(f"min_score must lie in [0, 1], got {min_score}")
        for k, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {k} is a {type(text).__name__}, not a str")
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
        articles = [Article(i, t, e, r) for i, t, e, r in zip(ids, texts, entities, relations)]
        entity_map, relation_map = self.calibration.get("entity_isotonic"), self.calibration.get("relation_isotonic")
        for article in articles:
            # Each kind through its own map; a relation's raw score already holds its entities' raw scores.
            for r in article.relations if relation_map else []:
                r.score = apply_isotonic(r.score, relation_map)
            for e in article.entities if entity_map else []:
                e.score = apply_isotonic(e.score, entity_map)
            if min_score is not None:
                article.entities = [e for e in article.entities if e.score >= min_score]
                kept = {e.id for e in article.entities}
                article.relations = [
                    r for r in article.relations if r.score >= min_score and r.head in kept and r.tail in kept
                ]
        return articles


def _encoder_loader(backend: str, onnx_dir: Path) -> Any:
    """(part directory, part name) -> the part's forward: the torch NER model, or None (the relation
    encoder loads with its model), or for the onnx backends the part's `OnnxEncoder`."""
    if backend != "torch":
        from .onnx_backend import OnnxEncoder  # onnxruntime only when asked for

        return lambda d, part: OnnxEncoder.load(onnx_dir, d, part, quantized=backend == "onnx-int8")
    return lambda d, part: AutoModelForTokenClassification.from_pretrained(d, use_safetensors=True) if part == "ner" else None


def _load_part(directory: Path, load: Any) -> tuple[Any, Any]:
    """Tokenizer and model of one part of a run (ner/ or relations/), safetensors weights only."""
    if not (directory / "model.safetensors").is_file():
        raise RunDirectoryError(f"{directory}: model.safetensors is missing (weights load only from safetensors)")
    try:
        return AutoTokenizer.from_pretrained(directory), load(directory)
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        raise RunDirectoryError(f"{directory}: cannot load the model ({err})") from None
