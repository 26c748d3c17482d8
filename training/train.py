"""`python -m training train`: the recipe that turns a config into a run directory.

Load the corpus, train NER, train relations (when the config has a `relations` section), fit
the score calibration and per-type thresholds on the dev split, write the run directory atomically. Runs through accelerate, so `accelerate launch -m training train`
uses several devices unchanged.
"""
from __future__ import annotations

import dataclasses
import json
import shutil
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from accelerate import Accelerator
from accelerate.utils import set_seed

from inference.calibration import mention_key
from inference.casing import save_encoder
from inference.extractor import MENTIONS_FILE, SCHEMA_VERSION, SETTINGS_FILE, NewsExtractor, known_mentions_json
from inference.ner import NerTagger
from inference.relations import RelationTagger
from inference.schema import Document, sentence_documents

from .checkpoint import Checkpoints, fingerprint
from .config import Config
from .calibrate import fit_calibration
from .corpora import check_data, digest, load_split
from .model_card import write_model_card
from .refit import check_refit, load_reference, refit_config, reused_calibration
from .train_ner import reading_spec, train_ner
from .train_relations import train_relations


def train(config: Config, resume: bool = False) -> Path:
    """Train what the config asks for; return the run directory. Checkpoints are kept beside it
    while training (training/checkpoint.py); `resume` continues from them."""
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    set_seed(config.seed)
    check_data(config.data)
    reference = load_reference(config) if config.refit else None
    if reference is not None:
        config = refit_config(config, reference)
    articles = load_split(config.data, "train")
    dev_articles = load_split(config.data, "dev")
    if reference is not None:
        articles = articles + dev_articles  # dev is training data now: it chooses and calibrates nothing
    train_docs, dev_docs = sentence_documents(articles), sentence_documents(dev_articles)
    entity_types = sorted({e.label for d in train_docs for e in d.entities})
    check_dev_labels(config, train_docs, dev_docs, accelerator.print)  # once, not once per process
    settings = run_settings(config, entity_types)
    output = config.output_dir()
    checkpoints = run_checkpoints(output, config, settings, accelerator.is_main_process, resume)

    ner_model, tokenizer, ner_result = train_ner(config, accelerator, articles, dev_docs, entity_types, settings, checkpoints)
    if reference is not None:
        check_refit(config.refit, "ner", ner_result.trained_dev_f1, reference, warn=accelerator.is_main_process)
    settings["training"] = {"ner": ner_result.to_dict()}
    relations = None
    if config.relations is not None:
        rel_model, rel_tokenizer, schema, rel_result, unreachable = train_relations(
            config, accelerator, train_docs, dev_docs, entity_types, ner_model, checkpoints
        )
        if reference is not None:
            check_refit(config.refit, "relations", rel_result.trained_dev_f1, reference, warn=accelerator.is_main_process)
        settings["relations"] = schema.to_dict()
        settings["training"]["relations"] = {**rel_result.to_dict(), "unreachable_train_relations": unreachable}
        relations = (rel_model, rel_tokenizer)

    if accelerator.is_main_process:
        extractor = NewsExtractor(
            NerTagger(ner_model, tokenizer, reading_spec(config.ner), config.ner.casing),
            settings,
            RelationTagger(relations[0], relations[1], schema, config.ner.casing) if relations else None,
        )
        extractor.known_mentions = known_mentions(train_docs)
        if reference is not None:
            settings["calibration"] = reused_calibration(config.refit, reference)
        else:
            # Calibrated on whole dev documents, as the product reads articles (sentence-fitted
            # maps were overconfident on whole CoNLL-2003 articles, where this model is weaker).
            calibration = fit_calibration(extractor, dev_articles, config.calibration.target_precision)
            settings["calibration"] = {**calibration, "fitted_on": str(config.data.path("dev"))}
        write_run(output, (ner_model, tokenizer), relations, settings, extractor.known_mentions)
        checkpoints.clear()
    accelerator.wait_for_everyone()
    return output


def run_checkpoints(output: Path, config: Config, settings: dict[str, Any], is_main: bool, resume: bool) -> Checkpoints:
    """The checkpoints of a run: resumed from (`resume`, they must exist) or cleared for a fresh start.

    They belong to the config and data digests, less `checkpoint_steps` (it changes no result)."""
    same_run = fingerprint({k: v for k, v in settings["config"].items() if k != "checkpoint_steps"}, settings["data"])
    checkpoints = Checkpoints(Checkpoints.for_run(output), config.checkpoint_steps, same_run, is_main)
    if resume and not checkpoints.exists():
        raise ValueError(f"--resume: no checkpoint in {checkpoints.root}; train without --resume to start")
    if not resume and checkpoints.exists():
        if is_main:
            print(f"starting afresh: removing the checkpoints of an earlier run in {checkpoints.root} (--resume continues it)")
        checkpoints.clear()
    return checkpoints


def check_dev_labels(config: Config, train_docs: list[Document], dev_docs: list[Document], say: Callable[[str], None]) -> None:
    """Every entity type and relation label of the dev split must occur in training: a model
    cannot predict a label it never saw, so one usually means a mislabelled split. With
    `data.unseen_dev_labels: allow` such labels are kept and reported through `say` instead."""
    kinds = (
        ("entity type", lambda d: [e.label for e in d.entities]),
        ("relation label", lambda d: [r.label for r in d.relations] if config.relations is not None else []),
    )
    for kind, labels_of in kinds:
        known = {label for d in train_docs for label in labels_of(d)}
        unseen = Counter(label for doc in dev_docs for label in labels_of(doc) if label not in known)
        if not unseen:
            continue
        if config.data.unseen_dev_labels == "allow":
            counts = ", ".join(f"{label} ({n})" for label, n in sorted(unseen.items()))
            say(f"{config.data.path('dev')}: {kind}s never seen in training, kept as misses (data.unseen_dev_labels: allow): {counts}")
            continue
        doc = next(d for d in dev_docs if set(labels_of(d)) - known)
        raise ValueError(
            f"{config.data.path('dev')}: document {doc.id!r} has the {kind} {min(set(labels_of(doc)) - known)!r}, which never occurs in "
            f"the training split {config.data.path('train')} (known: {', '.join(sorted(known))}); if the corpus "
            "really has such labels, set data.unseen_dev_labels: allow to keep them as misses"
        )


def run_settings(config: Config, entity_types: list[str]) -> dict[str, Any]:
    """The content of extractor.json (training results and the relation schema are added later)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "encoder": config.encoder,
        "entity_labels": entity_types,
        "window": dataclasses.asdict(reading_spec(config.ner)),
        "casing": config.ner.casing,
        "entity_score": "mean word-tag probability",
        "config": config.to_dict(),
        "data": {s: {"path": str(config.data.path(s)), "sha256": digest(config.data.path(s))} for s in ("train", "dev", "test")},
    }


def known_mentions(documents: list[Document]) -> dict[str, set[str]]:
    """The names annotated in `documents`, per label (inference.calibration.mention_key)."""
    mentions: dict[str, set[str]] = {}
    for doc in documents:
        for e in doc.entities:
            mentions.setdefault(e.label, set()).add(mention_key(doc.text[e.start : e.end]))
    return mentions


def write_run(
    output: Path, ner: tuple[Any, Any], relations: tuple[Any, Any] | None, settings: dict[str, Any], mentions: dict[str, set[str]]
) -> None:
    """Write the run into a temporary sibling, then rename: a half-written run never looks complete."""
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{output.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    save_encoder(ner[0], staging / "ner")
    ner[1].save_pretrained(staging / "ner")
    if relations is not None:
        (staging / "relations").mkdir()
        relations[0].save(staging / "relations")
        relations[1].save_pretrained(staging / "relations")
    (staging / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")
    (staging / MENTIONS_FILE).write_text(known_mentions_json(mentions), encoding="utf-8")
    write_model_card(staging)
    # Swap: the old run steps aside in one rename, the new one takes its place in another.
    retired = output.with_name(f".{output.name}.old")
    shutil.rmtree(retired, ignore_errors=True)
    if output.exists():
        output.rename(retired)
    staging.rename(output)
    shutil.rmtree(retired, ignore_errors=True)
