"""Training throughput on CPU: sentences (NER) and segments (relations) per second.

A short measurement, not a training: the config's models, features, batch sizes and the
project's own fine-tuning loop (`training.loop.fit`: length-grouped batches, AdamW, warm-up)
for `--steps` optimizer steps, without the dev evaluation a real epoch ends with.

Usage: python benchmarks/training_throughput.py [--config configs/conll04.yaml] [--steps 30] [--threads 2] [--set KEY=VALUE]
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import this checkout's packages


def measure(part: str, config: Any, steps: int) -> dict[str, Any]:
    """Build the part's model and data as `training.train` does and time `steps` optimizer steps."""
    import torch
    from accelerate import Accelerator
    from datasets import Dataset
    from transformers import AutoModel, AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification

    from inference.casing import enable_shape_embeddings
    from inference.encoders import resolve_encoder
    from inference.ner import bio_labels
    from inference.relations import RelationModel
    from inference.schema import sentence_documents
    from inference.windows import WindowSpec
    from training.corpora import load_split
    from training.features import RelationCollator, ner_features, relation_features
    from training.loop import fit
    from training.train_relations import relation_schema

    docs = sentence_documents(load_split(config.data, "train"))
    types = sorted({e.label for d in docs for e in d.entities})
    encoder_dir = resolve_encoder(config.encoder)
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    if part == "ner":
        labels = bio_labels(types)
        spec = WindowSpec(config.ner.max_length, config.ner.stride)
        features = ner_features(tokenizer, docs, spec, {t: i for i, t in enumerate(labels)}, config.ner.casing)
        model = encoder = AutoModelForTokenClassification.from_pretrained(encoder_dir, num_labels=len(labels), dtype=torch.float32)
        collate, hp = DataCollatorForTokenClassification(tokenizer), config.ner
    else:
        schema = relation_schema(config, docs, types)
        features, _ = relation_features(tokenizer, docs, schema, config.relations.negative_ratio, config.seed)
        encoder = AutoModel.from_pretrained(encoder_dir, dtype=torch.float32)
        model = RelationModel(encoder, len(schema.labels) + 1, context=schema.context)
        collate, hp = RelationCollator(tokenizer.pad_token_id, config.ner.casing), config.relations
    if config.ner.casing:
        enable_shape_embeddings(encoder)
    hp = dataclasses.replace(hp, epochs=1, max_steps=steps)
    if steps * hp.batch_size > len(features):
        raise ValueError(f"{steps} steps of {hp.batch_size} exceed the {len(features)} {part} examples of one epoch")
    cpu = time.process_time()
    result = fit(Accelerator(mixed_precision=config.mixed_precision), model, Dataset.from_list(features), collate, hp, config.seed, part, lambda m: 0.0)
    examples = steps * hp.batch_size
    return {"steps": steps, "batch_size": hp.batch_size, "examples": examples, "seconds": result.seconds,
            "cpu_seconds": time.process_time() - cpu,
            "examples_per_s": examples / result.seconds, "example": "sentence window" if part == "ner" else "segment"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/training_throughput.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=REPO / "configs" / "conll04.yaml")
    p.add_argument("--data-root", help="folder holding the corpora (default: $NEWS_DATA_DIR, else the config's)")
    p.add_argument("--steps", type=int, default=30, help="optimizer steps per model (default 30)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, as in `python -m training train` (e.g. mixed_precision=bf16)")
    p.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "throughput" / "training_conll04_cpu.json")
    args = p.parse_args(argv)
    import torch

    from training.config import ConfigError, load_config
    from training.corpora import DataMissing, check_data, data_root
    from training.evaluate import provenance, write_json

    torch.set_num_threads(args.threads)
    try:
        config = load_config(args.config, args.set)
        config = data_root(config, args.data_root)
        check_data(config.data)
        if args.steps < 1:
            raise ValueError(f"--steps must be at least 1, got {args.steps}")
        loadavg = Path("/proc/loadavg").read_text().split()[:3]
        start = time.perf_counter()
        parts = ["ner"] + (["relations"] if config.relations else [])
        results = {part: measure(part, config, args.steps) for part in parts}
    except (ConfigError, DataMissing, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    out = {"config": str(args.config), "overrides": args.set, "threads": args.threads, "loadavg_before": loadavg,
           "loadavg_after": Path("/proc/loadavg").read_text().split()[:3], "wall_seconds": time.perf_counter() - start,
           "parts": results, **provenance()}
    print(json.dumps(results, indent=2))
    write_json(out, args.out)
    print(f"results written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
