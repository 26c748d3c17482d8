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

from .ner import NerTagger
from .schema import Article
from .windows import WindowSpec

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
    """Entities (and, where the run has them, relations) with character offsets and scores."""

    def __init__(self, tagger: NerTagger, settings: dict[str, Any]) -> None:
        self.tagger = tagger
        self.settings = settings

    @classmethod
    def from_pretrained(cls, run_dir: str | Path, device: str | None = None) -> NewsExtractor:
        """Load a run directory; a clear `RunDirectoryError` if it is not one."""
        run_dir = Path(run_dir)
        settings = read_settings(run_dir)
        ner_dir = run_dir / "ner"
        if not (ner_dir / "model.safetensors").is_file():
            raise RunDirectoryError(f"{ner_dir}: model.safetensors is missing (weights load only from safetensors)")
        try:
            tokenizer = AutoTokenizer.from_pretrained(ner_dir)
            model = AutoModelForTokenClassification.from_pretrained(ner_dir, use_safetensors=True)
        except (OSError, ValueError) as err:
            raise RunDirectoryError(f"{ner_dir}: cannot load the NER model ({err})") from None
        labels = sorted({label.split("-", 1)[1] for label in model.config.id2label.values() if label != "O"})
        if labels != sorted(settings["entity_labels"]):
            raise RunDirectoryError(
                f"{run_dir}: the NER model's labels {labels} differ from {SETTINGS_FILE}'s {settings['entity_labels']}"
            )
        model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        spec = WindowSpec(**settings["window"])
        return cls(NerTagger(model, tokenizer, spec, settings["casing"]), settings)

    @property
    def entity_labels(self) -> list[str]:
        return list(self.settings["entity_labels"])

    def extract(self, text: str, id: str = "0") -> Article:
        """Entities of one text of any length."""
        return self.extract_many([text], ids=[id])[0]

    def extract_many(self, texts: list[str], batch_size: int = 32, ids: list[str] | None = None) -> list[Article]:
        """Entities of many texts; windows of all texts are batched together."""
        for k, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {k} is a {type(text).__name__}, not a str")
        ids = ids or [str(k) for k in range(len(texts))]
        if len(ids) != len(texts):
            raise ValueError(f"{len(ids)} ids given for {len(texts)} texts")
        entities = self.tagger.predict(texts, batch_size=batch_size)
        return [Article(i, t, e) for i, t, e in zip(ids, texts, entities)]
