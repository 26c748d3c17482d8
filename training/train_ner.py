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
from .config import Config, NerConfig
from .distill import DistillationCollator, DistilledTagger, teacher_word_probs, unlabeled_documents
from .evaluate import evaluate_documents
from .features import ner_features
from .loop import FitResult, fit


def reading_spec(ner: NerConfig) -> WindowSpec:
    """How a run reads a text: a model trained on single sentences reads each sentence alone
    (MiniLM on whole CoNLL-2003 test articles: 0.890 so, 0.844 through windows across them);
    one that saw article windows reads across sentences."""
    return WindowSpec(ner.max_length, ner.stride, sentences=ner.context == "sentence")


def training_specs(ner: NerConfig) -> list[WindowSpec]:
    """The windowings that cut the training articles into examples, one pass each (`ner.context`)."""
    by_sentence, across = WindowSpec(ner.max_length, ner.stride, sentences=True), WindowSpec(ner.max_length, ner.stride)
    return {"sentence": [by_sentence], "article": [across], "both": [by_sentence, across]}[ner.context]


def train_ner(
    config: Config,
    accelerator: Accelerator,
    articles: list[Document],
    dev_docs: list[Document],
    entity_types: list[str],
    settings: dict[str, Any],
    checkpoints: Checkpoints | None = None,
) -> tuple[torch.nn.Module, Any, FitResult]:
    """Train as `config.ner` says on the training articles, cut into sentence windows, article
    windows or both, with a teacher's help where `config.ner.distill` names one
    (training/distill.py); early stopping on the dev entity F1 measured through the inference
    code; `checkpoints`: save and resume (training/checkpoint.py)."""
    labels = bio_labels(entity_types)
    label2id = {label: i for i, label in enumerate(labels)}
    encoder_dir = resolve_encoder(config.encoder)
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    distill = config.ner.distill
    extra, taught, taught_extra = [], None, None
    if distill is not None:
        extra = unlabeled_documents(config)
        probs = teacher_word_probs(distill, labels, tokenizer, articles + extra, str(accelerator.device))
        taught, taught_extra = probs[: len(articles)], probs[len(articles) :]
    features = []
    for spec in training_specs(config.ner):
        features += ner_features(tokenizer, articles, spec, label2id, config.ner.casing, taught)
        features += ner_features(tokenizer, extra, spec, label2id, config.ner.casing, taught_extra, gold=False)
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
        extractor = NewsExtractor(NerTagger(trained, tokenizer, reading_spec(config.ner), config.ner.casing), settings)
        return evaluate_documents(extractor, dev_docs)["ner"]["micro"]["f1"]

    refit = bool(config.refit)  # a refit trains on dev: its dev F1 only detects a collapse (training/refit.py)
    if distill is None:
        collate = DataCollatorForTokenClassification(tokenizer)
        result = fit(accelerator, model, dataset, collate, config.ner, config.seed, "NER", dev_f1, checkpoints, refit)
    else:
        # The wrapper only changes the loss; its weights are the model's own (best epoch loaded back).
        result = fit(
            accelerator, DistilledTagger(model, distill.weight), dataset, DistillationCollator(tokenizer),
            config.ner, config.seed, "NER", lambda wrapped: dev_f1(wrapped.model), checkpoints, refit,
        )
    return model, tokenizer, result
