"""Fine-tune a token-classification model on a config's corpus and write the run directory.

Runs through accelerate, so `accelerate launch -m training train ...` uses several devices
unchanged. Early stopping keeps the weights of the epoch with the best dev F1.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from datasets import Dataset
from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification

from inference.casing import enable_shape_embeddings
from inference.encoders import resolve_encoder
from inference.extractor import SCHEMA_VERSION, SETTINGS_FILE, NewsExtractor
from inference.ner import NerTagger, bio_labels
from inference.schema import Document
from inference.windows import WindowSpec

from .config import Config
from .corpora import check_data, digest, load_split
from .evaluate import evaluate_entities
from .features import ner_features
from .loop import fit


def sentences(documents: list[Document]) -> list[Document]:
    return [s for d in documents for s in d.sentence_documents()]


def train(config: Config) -> Path:
    """Train NER as the config says; return the run directory."""
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    set_seed(config.seed)
    check_data(config.data)
    articles = load_split(config.data, "train")
    train_docs, dev_docs = sentences(articles), sentences(load_split(config.data, "dev"))
    entity_types = sorted({e.label for d in train_docs for e in d.entities})
    labels = bio_labels(entity_types)
    label2id = {label: i for i, label in enumerate(labels)}
    unseen = sorted({e.label for d in dev_docs for e in d.entities} - set(entity_types))
    if unseen:
        raise ValueError(f"{config.data.path('dev')}: entity types {unseen} never occur in the training split")

    encoder_dir = resolve_encoder(config.encoder)
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    spec = WindowSpec(config.ner.max_length, config.ner.stride)
    windowed = {"sentence": train_docs, "article": articles, "both": train_docs + articles}[config.ner.context]
    dataset = Dataset.from_list(ner_features(tokenizer, windowed, spec, label2id, config.ner.casing))
    model = AutoModelForTokenClassification.from_pretrained(
        encoder_dir,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label2id,
        dtype=torch.float32,
        ignore_mismatched_sizes=True,  # an encoder that is a trained NER model brings a head for other labels
    )
    if config.ner.casing:
        enable_shape_embeddings(model)

    settings = run_settings(config, entity_types, spec)

    def dev_f1(trained: torch.nn.Module) -> float:
        extractor = NewsExtractor(NerTagger(trained, tokenizer, spec, config.ner.casing), settings)
        return evaluate_entities(extractor, dev_docs)["micro"]["f1"]

    result = fit(
        accelerator, model, dataset, DataCollatorForTokenClassification(tokenizer), config.ner, config.seed, "NER", dev_f1
    )
    output = config.output_dir()
    if accelerator.is_main_process:
        settings["training"] = {"ner": result.to_dict()}
        write_run(output, model, tokenizer, settings)
    accelerator.wait_for_everyone()
    return output


def run_settings(config: Config, entity_types: list[str], spec: WindowSpec) -> dict[str, Any]:
    """The content of extractor.json (training results are added at the end)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "encoder": config.encoder,
        "entity_labels": entity_types,
        "window": {"max_length": spec.max_length, "stride": spec.stride},
        "casing": config.ner.casing,
        "entity_score": "mean word-tag probability",
        "config": config.to_dict(),
        "data": {s: {"path": str(config.data.path(s)), "sha256": digest(config.data.path(s))} for s in ("train", "dev", "test")},
    }


def write_run(output: Path, model: Any, tokenizer: Any, settings: dict[str, Any]) -> None:
    """Write the run into a temporary sibling, then rename: a half-written run never looks complete."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{output.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging / "ner", safe_serialization=True)
    tokenizer.save_pretrained(staging / "ner")
    (staging / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    if output.exists():
        shutil.rmtree(output)
    staging.rename(output)
