"""Experiment (issue 5): a span-classification head against the token tagger, same encoder and data.

The span head scores every span of up to `--max-width` subword tokens of a window from its first
and last token states and a width embedding (a small MLP: none or one entity type), learns from
the gold spans read off the BIO labels of the training features, and decodes greedily: the most
probable non-overlapping spans. At inference it writes its spans back as BIO tag log-probabilities
per token, so the product's reading, decoding and scoring code (NerTagger, seqeval on corpus
tokens) evaluates both heads the same way, in this process, without calibration (raw output).

Usage: python benchmarks/span_head.py --head span|token [--config C] [--set KEY=VALUE ...] --out FILE
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import this checkout's packages

from accelerate import Accelerator  # noqa: E402
from datasets import Dataset  # noqa: E402
from transformers import AutoModelForTokenClassification, AutoTokenizer, DataCollatorForTokenClassification, set_seed  # noqa: E402

from inference.casing import enable_shape_embeddings  # noqa: E402
from inference.encoders import resolve_encoder  # noqa: E402
from inference.extractor import NewsExtractor  # noqa: E402
from inference.ner import NerTagger, bio_labels  # noqa: E402
from inference.schema import sentence_documents  # noqa: E402
from training.config import load_config  # noqa: E402
from training.corpora import load_split  # noqa: E402
from training.evaluate import evaluate_documents, format_table, provenance, write_json  # noqa: E402
from training.features import IGNORE, ner_features  # noqa: E402
from training import loop  # noqa: E402
from training.loop import fit  # noqa: E402
from training.train import run_settings  # noqa: E402
from training.train_ner import reading_spec, train_ner, training_specs  # noqa: E402


class SpanHead(torch.nn.Module):
    """The tagger's encoder with a span classifier on top; its `logits` are BIO log-probabilities."""

    def __init__(self, tagger: torch.nn.Module, max_width: int, negatives: int = 100, hidden: int = 256,
                 width_dim: int = 32) -> None:
        super().__init__()
        self.tagger, self.config, self.max_width, self.negatives = tagger, tagger.config, max_width, negatives
        labels = [self.config.id2label[i] for i in range(len(self.config.id2label))]
        self.types = sorted({label[2:] for label in labels if label != "O"})
        self.begin = [labels.index(f"B-{t}") for t in self.types]
        self.inside = [labels.index(f"I-{t}") for t in self.types]
        self.label_type = {i: (label[:1], self.types.index(label[2:])) for i, label in enumerate(labels) if label != "O"}
        size = self.config.hidden_size
        self.width = torch.nn.Embedding(max_width, width_dim)
        self.scorer = torch.nn.Sequential(
            torch.nn.Linear(2 * size + width_dim, hidden), torch.nn.GELU(), torch.nn.Dropout(0.1),
            torch.nn.Linear(hidden, len(self.types) + 1),
        )

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor | None = None,
                labels: torch.Tensor | None = None) -> SimpleNamespace:
        states = self.tagger.base_model(input_ids=input_ids, attention_mask=attention_mask,
                                        token_type_ids=token_type_ids).last_hidden_state
        rows, length = input_ids.shape
        starts = torch.arange(length, device=input_ids.device)[:, None].expand(length, self.max_width)
        ends = starts + torch.arange(self.max_width, device=input_ids.device)[None, :]
        # Content tokens lie between the leading special token and the closing one.
        content_end = attention_mask.sum(1) - 2  # last content position per row
        valid = (starts >= 1)[None] & (ends[None] <= content_end[:, None, None])  # rows x length x width
        pairs = torch.cat([states[:, starts], states[:, ends.clamp(max=length - 1)],
                           self.width.weight[None, None].expand(rows, length, -1, -1)], dim=-1)
        scores = self.scorer(pairs).float()  # rows x length x width x (1 + types)
        if labels is not None:
            gold = self.gold_classes(labels, content_end, valid)
            # SpERT's sampling: all gold spans and up to `negatives` others per window.
            keep_share = (self.negatives / valid.flatten(1).sum(1).clamp_min(1)).clamp(max=1.0)
            kept = valid & ((gold > 0) | (torch.rand(valid.shape, device=valid.device) < keep_share[:, None, None]))
            loss = torch.nn.functional.cross_entropy(scores[kept], gold[kept])
            return SimpleNamespace(loss=loss, logits=None)
        return SimpleNamespace(logits=self.tag_logprobs(scores.softmax(-1), valid, len(self.config.id2label)))

    def gold_classes(self, labels: torch.Tensor, content_end: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        """Per span, 0 (none) or 1 + its entity type."""
        gold = torch.zeros(valid.shape, dtype=torch.long, device=labels.device)
        for r, row in enumerate(labels.tolist()):
            for start, end, kind in gold_spans(row, int(content_end[r]), self.label_type):
                if end - start < self.max_width:  # longer ones cannot be learnt (counted in train_span_head)
                    gold[r, start, end - start] = 1 + kind
        return gold

    def tag_logprobs(self, probs: torch.Tensor, valid: torch.Tensor, n_labels: int) -> torch.Tensor:
        """Greedy non-overlapping spans, most probable first, written as BIO log-probabilities."""
        rows, length = probs.shape[:2]
        out = torch.full((rows, length, n_labels), 1e-4 / (n_labels - 1), device=probs.device)
        out[..., 0] = 1 - 1e-4  # label 0 is O (bio_labels)
        best, kind = probs[..., 1:].max(-1)
        found = (best > probs[..., 0]) & valid
        for r in range(rows):
            taken = torch.zeros(length, dtype=torch.bool)
            cand = found[r].nonzero().tolist()
            for s, w in sorted(cand, key=lambda sw: -float(best[r, sw[0], sw[1]])):
                if taken[s : s + w + 1].any():
                    continue
                taken[s : s + w + 1] = True
                # Its type against none (> 0.5 by the choice), so that decoding keeps the span.
                q, t = float(best[r, s, w] / (best[r, s, w] + probs[r, s, w, 0])), int(kind[r, s, w])
                for pos in range(s, s + w + 1):
                    out[r, pos] = (1 - q) * 1e-4 / (n_labels - 2)
                    out[r, pos, 0] = 1 - q
                    out[r, pos, self.begin[t] if pos == s else self.inside[t]] = q
        return out.clamp_min(1e-12).log()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python benchmarks/span_head.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--head", choices=["token", "span"], required=True)
    p.add_argument("--config", type=Path, default=REPO / "configs" / "conll2003_pretrain.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--max-width", type=int, default=16, help="longest span in subword tokens (default 16)")
    p.add_argument("--head-lr", type=float, default=1e-3, help="the span scorer's learning rate (default 1e-3)")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    config = load_config(args.config, args.set)
    accelerator = Accelerator(mixed_precision=config.mixed_precision)
    set_seed(config.seed)
    articles, dev_articles, test_articles = (load_split(config.data, s) for s in ("train", "dev", "test"))
    dev_docs = sentence_documents(dev_articles)
    entity_types = sorted({e.label for d in sentence_documents(articles) for e in d.entities})
    settings = run_settings(config, entity_types)
    start = time.perf_counter()
    if args.head == "token":
        model, tokenizer, result = train_ner(config, accelerator, articles, dev_docs, entity_types, settings)
    else:
        model, tokenizer, result = train_span_head(config, accelerator, articles, dev_docs, entity_types, settings,
                                                   args.max_width, args.head_lr)
    tagger = NerTagger(model, tokenizer, reading_spec(config.ner), config.ner.casing)
    metrics = evaluate_documents(NewsExtractor(tagger, settings), sentence_documents(test_articles))
    print(format_table(metrics["ner"], f"entities, sentence level, test, {args.head} head"))
    write_json({"head": args.head, "max_width": args.max_width, "head_lr": args.head_lr, "ner": metrics["ner"], "config": config.to_dict(),
                "training": result.to_dict(), "seconds": time.perf_counter() - start, **provenance()}, args.out)
    return 0


def train_span_head(config: Any, accelerator: Accelerator, articles: list, dev_docs: list, entity_types: list[str],
                    settings: dict[str, Any], max_width: int, head_lr: float) -> tuple[SpanHead, Any, Any]:
    """train_ner's recipe (features, shape signal, loop, dev F1 through the inference code) with the span head."""
    labels = bio_labels(entity_types)
    label2id = {label: i for i, label in enumerate(labels)}
    encoder_dir = resolve_encoder(config.encoder)
    tokenizer = AutoTokenizer.from_pretrained(encoder_dir)
    features = [f for spec in training_specs(config.ner)
                for f in ner_features(tokenizer, articles, spec, label2id, config.ner.casing)]
    tagger = AutoModelForTokenClassification.from_pretrained(
        encoder_dir, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id,
        dtype=torch.float32, use_safetensors=True)
    if config.ner.casing:
        enable_shape_embeddings(tagger)
    model = SpanHead(tagger, max_width)
    too_long = sum(end - start >= max_width for f in features
                   for start, end, _ in gold_spans(f["labels"], len(f["labels"]) - 2, model.label_type))
    print(f"span head: {too_long} gold spans longer than {max_width} subwords (not learnable)")

    def dev_f1(trained: torch.nn.Module) -> float:
        extractor = NewsExtractor(NerTagger(trained, tokenizer, reading_spec(config.ner), config.ner.casing), settings)
        return evaluate_documents(extractor, dev_docs)["ner"]["micro"]["f1"]

    # The fresh span scorer learns at `head_lr` (the encoder at the config's rate): fit builds its
    # optimizer groups through loop.parameter_groups, extended here for this experiment only.
    head = {id(p) for p in [*model.scorer.parameters(), *model.width.parameters()]}

    def groups(module: torch.nn.Module, hp: Any) -> list[dict[str, Any]]:
        rest = [{**g, "params": [p for p in g["params"] if id(p) not in head]} for g in encoder_groups(module, hp)]
        return rest + [{"params": [p for p in module.parameters() if id(p) in head], "lr": head_lr}]

    encoder_groups, loop.parameter_groups = loop.parameter_groups, groups
    collate = DataCollatorForTokenClassification(tokenizer)
    result = fit(accelerator, model, Dataset.from_list(features), collate, config.ner, config.seed, "NER", dev_f1)
    return model, tokenizer, result


def gold_spans(row: list[int], content_end: int, label_type: dict[int, tuple[str, int]]) -> list[tuple[int, int, int]]:
    """(first token, last token, type index) of each gold entity of one window, read off the BIO
    labels at first subwords: an entity ends just before the next word, or at the window's end."""
    words = [t for t, label in enumerate(row) if label != IGNORE]
    spans = []
    for k, t in enumerate(words):
        kind = label_type.get(row[t])
        if kind is None or kind[0] != "B":
            continue
        last = k
        while last + 1 < len(words) and label_type.get(row[words[last + 1]]) == ("I", kind[1]):
            last += 1
        spans.append((t, words[last + 1] - 1 if last + 1 < len(words) else content_end, kind[1]))
    return spans


if __name__ == "__main__":
    sys.exit(main())
