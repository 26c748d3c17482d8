"""Fine-tune the relation classifier on gold entities of a config's corpus."""
from __future__ import annotations

import copy

import torch
from accelerate import Accelerator
from datasets import Dataset
from transformers import AutoModel, AutoTokenizer

from inference.casing import enable_shape_embeddings, load_shape_table
from inference.encoders import resolve_encoder
from inference.relations import RelationModel, RelationSchema, RelationTagger
from inference.schema import Document

from .checkpoint import Checkpoints
from .config import Config
from .evaluate import gold_entities, relation_scores
from .features import RelationCollator, relation_features
from .loop import FitResult, fit


def relation_schema(config: Config, train_docs: list[Document], entity_types: list[str]) -> RelationSchema:
    """Labels and allowed argument types as the training data shows them."""
    rc = config.relations
    labels = sorted({r.label for d in train_docs for r in d.relations})
    if not labels:
        raise ValueError(f"{config.data.path('train')}: the config asks for relations but the training split has none")
    unknown = sorted(set(rc.symmetric) - set(labels))
    if unknown:
        raise ValueError(f"relations.symmetric names {unknown}, which the training split does not contain ({labels})")
    allowed = None
    if rc.type_constraints:
        seen = set()
        for d in train_docs:
            for r in d.relations:
                head, tail = d.entities[r.head].label, d.entities[r.tail].label
                seen.add((head, tail))
                if r.label in rc.symmetric:
                    seen.add((tail, head))
        allowed = [list(p) for p in sorted(seen)]
    return RelationSchema(labels, entity_types, list(rc.symmetric), allowed, rc.max_distance, rc.max_length, rc.context)


def train_relations(
    config: Config,
    accelerator: Accelerator,
    train_docs: list[Document],
    dev_docs: list[Document],
    entity_types: list[str],
    ner_model: torch.nn.Module,
    checkpoints: Checkpoints | None = None,
) -> tuple[RelationModel, object, RelationSchema, FitResult, int]:
    """Train as `config.relations` says; returns model, tokenizer, schema, training record and
    the number of training relations no candidate pair reaches. `checkpoints`: save and resume."""
    rc = config.relations
    schema = relation_schema(config, train_docs, entity_types)
    encoder_dir = resolve_encoder(config.encoder)
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    features, unreachable = relation_features(tokenizer, train_docs, schema, rc.negative_ratio, config.seed)
    pairs = sum(len(f["labels"]) for f in features)
    positives = sum(1 for f in features for label in f["labels"] if label)
    accelerator.print(
        f"relations: {len(features)} segments, {pairs} candidate pairs, {positives} related; "
        f"{unreachable} of {sum(len(d.relations) for d in train_docs)} training relations reach no candidate pair"
    )
    if rc.init == "ner":
        encoder = copy.deepcopy(accelerator.unwrap_model(ner_model).base_model)  # shape embeddings included
    else:
        encoder = AutoModel.from_pretrained(encoder_dir, dtype=torch.float32, use_safetensors=True)
        load_shape_table(encoder, encoder_dir)
        if config.ner.casing:
            enable_shape_embeddings(encoder)
    model = RelationModel(encoder, len(schema.labels) + 1, rc.dropout, schema.context)

    def dev_f1(trained: torch.nn.Module) -> float:
        tagger = RelationTagger(trained, tokenizer, schema, config.ner.casing)
        return relation_scores(dev_docs, *gold_entities(tagger, dev_docs), schema.symmetric)["strict"]["micro"]["f1"]

    collate = RelationCollator(tokenizer.pad_token_id, config.ner.casing)
    refit = bool(config.refit)  # a refit trains on dev: its dev F1 only detects a collapse (training/refit.py)
    result = fit(accelerator, model, Dataset.from_list(features), collate, rc, config.seed, "relations", dev_f1, checkpoints, refit)
    return model, tokenizer, schema, result, unreachable
