"""Fine-tune a token-classification model on a config's corpus and write the run directory.

Runs through accelerate, so `accelerate launch -m training train ...` uses several devices
unchanged. Early stopping keeps the weights of the epoch with the best dev F1.
"""
from __future__ import annotations

import copy
import json
import math
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from datasets import Dataset
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import (
    AutoModelForTokenClassification,
    AutoTokenizer,
    DataCollatorForTokenClassification,
    get_linear_schedule_with_warmup,
)

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
        encoder_dir, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id, dtype=torch.float32
    )
    if config.ner.casing:
        enable_shape_embeddings(model)
    loader = DataLoader(
        dataset,
        batch_size=config.ner.batch_size,
        shuffle=True,
        collate_fn=DataCollatorForTokenClassification(tokenizer),
        generator=torch.Generator().manual_seed(config.seed),
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.ner.learning_rate, weight_decay=config.ner.weight_decay)
    steps_per_epoch = math.ceil(len(loader) / accelerator.num_processes)
    total = config.ner.epochs * steps_per_epoch
    if config.ner.max_steps is not None:
        total = min(total, config.ner.max_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(config.ner.warmup_ratio * total), total)
    model, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)

    settings = run_settings(config, entity_types, spec)
    best_f1, best_state, history, stale, step = -1.0, None, [], 0, 0
    started = time.perf_counter()
    progress = tqdm(total=total, desc="training NER", disable=None if accelerator.is_main_process else True)  # None: off when not a terminal
    for epoch in range(1, config.ner.epochs + 1):
        model.train()
        for batch in loader:
            loss = model(**batch).loss
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            progress.update(1)
            progress.set_postfix(epoch=epoch, loss=f"{loss.item():.4f}")
            if step >= total:
                break
        dev_f1 = dev_score(accelerator, model, tokenizer, spec, settings, dev_docs)
        history.append({"epoch": epoch, "step": step, "dev_f1": dev_f1})
        accelerator.print(f"epoch {epoch}: dev entity F1 {dev_f1:.4f}")
        if dev_f1 > best_f1:
            best_f1, stale = dev_f1, 0
            best_state = copy.deepcopy(accelerator.unwrap_model(model).state_dict())
        else:
            stale += 1
        if stale >= config.ner.patience or step >= total:
            break
    progress.close()

    output = config.output_dir()
    if accelerator.is_main_process:
        best = accelerator.unwrap_model(model)
        best.load_state_dict(best_state)
        seconds = time.perf_counter() - started
        settings["training"] = {
            "history": history,
            "best_dev_f1": best_f1,
            "seconds": round(seconds, 1),
            "windows": len(dataset),
            "device": str(accelerator.device),
        }
        write_run(output, best, tokenizer, settings)
    accelerator.wait_for_everyone()
    return output


def dev_score(accelerator: Accelerator, model: Any, tokenizer: Any, spec: WindowSpec, settings: dict, dev_docs: list[Document]) -> float:
    """Dev micro F1 through the inference code, on the main process."""
    f1 = 0.0
    if accelerator.is_main_process:
        tagger = NerTagger(accelerator.unwrap_model(model), tokenizer, spec, settings["casing"])
        extractor = NewsExtractor(tagger, settings)
        f1 = evaluate_entities(extractor, dev_docs)["micro"]["f1"]
    return float(accelerator.gather(torch.tensor([f1], device=accelerator.device)).max())


def run_settings(config: Config, entity_types: list[str], spec: WindowSpec) -> dict[str, Any]:
    """The content of extractor.json (training history is added at the end)."""
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
