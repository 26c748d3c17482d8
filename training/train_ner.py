"""Fine-tune the token-classification (NER) model of a run."""
from __future__ import annotations

from typing import Any

import torch
from accelerate import Accelerator
from datasets import Dataset
from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification

from inference.casing import enable_shape_embeddings, load_shape_table
from inference.encoders import resolve_encoder
from inference.extractor import NewsExtractor
from inference.ner import NerTagger, bio_labels
from inference.schema import Document
from inference.windows import WindowSpec

from .checkpoint import Checkpoints
from .config import Config
from .distill import DistillationCollator, DistilledTagger, teacher_word_probs, unlabeled_documents
from .evaluate import evaluate_documents
from .features import ner_features
from .loop import FitResult, fit


def train_ner(
    config: Config,
    accelerator: Accelerator,
    train_docs: list[Document],
    dev_docs: list[Document],
    entity_types: list[str],
    settings: dict[str, Any],
    checkpoints: Checkpoints | None = None,
) -> tuple[torch.nn.Module, Any, FitResult]:
    """Train as `config.ner` says on `train_docs` (sentences, articles or both, as given), with
    a teacher's help where `config.ner.distill` names one (training/distill.py); early stopping
    on the dev entity F1 measured through the inference code; `checkpoints`: save and resume
    (training/checkpoint.py)."""
    labels = bio_labels(entity_types)
    label2id = {label: i for i, label in enumerate(labels)}
    encoder_dir = resolve_encoder(config.encoder)
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    spec = WindowSpec(config.ner.max_length, config.ner.stride)
    distill = config.ner.distill
    if distill is None:
        features = ner_features(tokenizer, train_docs, spec, label2id, config.ner.casing)
    else:
        extra = unlabeled_documents(config)
        taught = teacher_word_probs(distill, labels, tokenizer, train_docs + extra, str(accelerator.device))
        features = ner_features(tokenizer, train_docs, spec, label2id, config.ner.casing, taught[: len(train_docs)])
        features += ner_features(tokenizer, extra, spec, label2id, config.ner.casing, taught[len(train_docs) :], gold=False)
    dataset = Dataset.from_list(features)
    model = AutoModelForTokenClassification.from_pretrained(
        encoder_dir,
        num_labels=len(labels),
        id2label=dict(enumerate(labels)),
        label2id=label2id,
        dtype=torch.float32,
        use_safetensors=True,
        ignore_mismatched_sizes=True,  # an encoder that is a trained NER model brings a head for other labels
    )
    load_shape_table(model, encoder_dir)  # an encoder trained here may bring its own shape table
    if config.ner.casing:
        enable_shape_embeddings(model)

    def dev_f1(trained: torch.nn.Module) -> float:
        extractor = NewsExtractor(NerTagger(trained, tokenizer, spec, config.ner.casing), settings)
        return evaluate_documents(extractor, dev_docs)["ner"]["micro"]["f1"]

    score = None if config.refit else dev_f1  # a refit trains on dev
    if distill is None:
        collate = DataCollatorForTokenClassification(tokenizer)
        result = fit(accelerator, model, dataset, collate, config.ner, config.seed, "NER", score, checkpoints)
    else:
        # The wrapper only changes the loss; its weights are the model's own (best epoch loaded back).
        result = fit(
            accelerator, DistilledTagger(model, distill.weight), dataset, DistillationCollator(tokenizer),
            config.ner, config.seed, "NER", None if score is None else (lambda wrapped: dev_f1(wrapped.model)), checkpoints,
        )
    return model, tokenizer, result
