"""Relation inputs: markers and offsets, candidate pairs, label schemas from the data."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inference.relations import (
    RelationModel,
    RelationSchema,
    candidate_pairs,
    collate_segments,
    marker_ids,
    pair_positions,
    relation_inputs,
)
from inference.windows import tokenize

TEXT = "John Smith works for Acme Corp in Boston. Maria Lopez lives in Paris."
ENTITIES = [(0, 10, "Peop"), (21, 30, "Org"), (34, 40, "Loc"), (42, 53, "Peop"), (63, 68, "Loc")]


def schema(**kw) -> RelationSchema:
    return RelationSchema(["Live_In", "Work_For"], ["Loc", "Org", "Peop"], [], None, **kw)


def test_markers_wrap_each_entity_and_point_at_its_opening(tokenizer):
    s = schema()
    markers = marker_ids(tokenizer, s)
    toks = tokenize(tokenizer, [TEXT])[0]
    segments, pairs = relation_inputs(tokenizer, toks, TEXT, ENTITIES, s, markers)
    assert len(segments) == 2, "one segment per sentence"
    first = segments[0]
    words = tokenizer.convert_ids_to_tokens(first.input_ids)
    opening = {ids[0]: t for t, ids in markers.items()}
    closing = {ids[1]: t for t, ids in markers.items()}
    for k, position in first.marker_index.items():
        assert opening[first.input_ids[position]] == ENTITIES[k][2]
        # The entity's own tokens follow its opening marker, then its closing marker.
        inner = tokenizer.convert_tokens_to_string(
            words[position + 1 : next(p for p in range(position, len(words)) if first.input_ids[p] in closing)]
        )
        assert inner == TEXT[ENTITIES[k][0] : ENTITIES[k][1]].lower()
    assert words[0] == "[CLS]" and words[-1] == "[SEP]" and "maria" not in words
    assert len(first.shapes) == len(first.input_ids)
    assert all(first.shapes[p] == 0 for p in first.marker_index.values())


def test_candidates_cover_every_pair_once(tokenizer):
    toks = tokenize(tokenizer, [TEXT])[0]
    segments, pairs = relation_inputs(tokenizer, toks, TEXT, ENTITIES, schema(), marker_ids(tokenizer, schema()))
    got = [(h, t) for h, t, _ in pairs]
    same_sentence = [(h, t) for h in range(5) for t in range(5) if h != t and (h < 3) == (t < 3)]
    assert sorted(got) == sorted(same_sentence) and len(got) == len(set(got))
    # With a character window, pairs across the sentence boundary join, each once.
    wide = schema(max_distance=30)
    _, pairs = relation_inputs(tokenizer, toks, TEXT, ENTITIES, wide, marker_ids(tokenizer, wide))
    got = [(h, t) for h, t, _ in pairs]
    assert (2, 3) in got and (3, 2) in got and (0, 4) not in got and len(got) == len(set(got))


def test_pair_context_is_the_tokens_between_the_two_entities(tokenizer):
    toks = tokenize(tokenizer, [TEXT])[0]
    segments, _ = relation_inputs(tokenizer, toks, TEXT, ENTITIES, schema(), marker_ids(tokenizer, schema()))
    first = segments[0]
    between = lambda lo, hi: tokenizer.decode(first.input_ids[lo:hi])  # noqa: E731
    head, tail, lo, hi = pair_positions(first, 2, 0)  # Boston -> John Smith: the order of the text decides
    assert (head, tail) == (first.marker_index[2], first.marker_index[0])
    assert between(lo, hi) == "works for [unused2] acme corp [unused3] in"
    assert between(*pair_positions(first, 0, 1)[2:]) == "works for"
    # Nested entities have nothing between them: an empty range, which the model reads as zeros.
    nested = [(0, 10, "Peop"), (5, 10, "Peop")]
    segment = relation_inputs(tokenizer, toks, TEXT, nested, schema(), marker_ids(tokenizer, schema()))[0][0]
    lo, hi = pair_positions(segment, 0, 1)[2:]
    assert hi == lo


def test_context_model_pools_only_between_the_entities(tokenizer):
    from transformers import BertConfig, BertModel

    toks = tokenize(tokenizer, [TEXT])[0]
    segment = relation_inputs(tokenizer, toks, TEXT, ENTITIES, schema(), marker_ids(tokenizer, schema()))[0][0]
    encoder = BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                   vocab_size=tokenizer.vocab_size)).eval()
    model = RelationModel(encoder, 3, context=True).eval()
    pairs = [(0, *pair_positions(segment, 0, 1)), (0, *pair_positions(segment, 0, 2))]
    batch = collate_segments([segment], pairs, tokenizer.pad_token_id, casing=False)
    logits = model(**batch).logits
    # The classifier reads head marker, tail marker and the max over the tokens between the two.
    states = encoder(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).last_hidden_state[0]
    lo, hi = pairs[0][3], pairs[0][4]
    expected = model.classifier(torch.cat([states[pairs[0][1]], states[pairs[0][2]], states[lo:hi].max(0).values]))
    assert torch.allclose(logits[0], expected, atol=1e-5)
    assert model.classifier.in_features == 3 * 16


def test_type_constraints_prune_candidates(tokenizer):
    constrained = RelationSchema(["Work_For"], ["Loc", "Org", "Peop"], [], [["Peop", "Org"]])
    spans = [(0, 1), (4, 6), (7, 8)]
    assert candidate_pairs(ENTITIES[:3], spans, [0, 0, 0], constrained) == [(0, 1)]


def test_long_sentences_get_a_segment_around_the_pair(tokenizer):
    filler = " and then" * 80
    text = f"John Smith works for Acme Corp{filler} in Boston."
    ents = [(0, 10, "Peop"), (21, 30, "Org"), (len(text) - 7, len(text) - 1, "Loc")]
    s = schema(max_length=48)
    toks = tokenize(tokenizer, [text])[0]
    segments, pairs = relation_inputs(tokenizer, toks, text, ents, s, marker_ids(tokenizer, s))
    assert {(h, t) for h, t, _ in pairs} == {(0, 1), (1, 0)}, "Boston is too far away to share a segment"
    assert all(len(seg.input_ids) <= 48 for seg in segments)


@pytest.mark.skipif(not Path("../shared/data").is_dir(), reason="the team's data folder ../shared/data is absent")
@pytest.mark.parametrize(
    "fmt,path,labels",
    [
        ("spert", "conll04/train.json", ["Kill", "Live_In", "Located_In", "OrgBased_In", "Work_For"]),
        ("crossre", "crossre_news/news-train.json", None),
    ],
)
def test_label_schema_comes_from_the_data(tokenizer, fmt, path, labels):
    from training.config import Config, DataConfig, RelationConfig
    from training.readers import read_documents
    from training.train_relations import relation_schema

    docs = read_documents(Path("../shared/data") / path, fmt)
    config = Config("x", DataConfig(fmt, path, path, path), relations=RelationConfig())
    types = sorted({e.label for d in docs for e in d.entities})
    s = relation_schema(config, docs, types)
    if labels:
        assert s.labels == labels
    else:
        assert len(s.labels) == 14 and "physical" in s.labels  # the train split holds 14 of the 15 types
    # Every training relation is reachable (same sentence, allowed types) in these corpora.
    assert all((d.entities[r.head].label, d.entities[r.tail].label) in {tuple(p) for p in s.allowed} for d in docs for r in d.relations)


def test_a_run_on_text_needs_few_segments(tokenizer):
    """No sentence ends: windows cover the text, so encoder passes grow with its length, not with its pairs."""
    import re

    text = " ".join(["John Smith met Acme Corp in Boston and"] * 150)
    types = {"John Smith": "Peop", "Acme Corp": "Org", "Boston": "Loc"}
    ents = [(m.start(), m.end(), types[m.group()]) for m in re.finditer("John Smith|Acme Corp|Boston", text)]
    s = schema(max_length=64)
    toks = tokenize(tokenizer, [text])[0]
    segments, pairs = relation_inputs(tokenizer, toks, text, ents, s, marker_ids(tokenizer, s))
    assert len(segments) <= 4 * len(toks.input_ids) // 62 + 2
    assert all(len(seg.input_ids) <= 64 for seg in segments)
    got = [(h, t) for h, t, _ in pairs]
    assert len(got) == len(set(got)) and (0, 1) in got and (1, 0) in got


def test_a_context_model_saves_loads_and_tags(tokenizer, tmp_path):
    from transformers import BertConfig, BertModel

    from inference.relations import RelationTagger
    from inference.schema import Entity

    s = schema(context=True)
    encoder = BertModel(BertConfig(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                                   vocab_size=tokenizer.vocab_size))
    model = RelationModel(encoder, len(s.labels) + 1, context=True)
    torch.nn.init.normal_(model.classifier.weight, std=5.0)  # confident labels, so that relations come out
    model.save(tmp_path)
    loaded = RelationModel.load(tmp_path, s)
    assert loaded.context and torch.equal(loaded.classifier.weight, model.classifier.weight)
    entities = [Entity(f"T{k}", a, b, TEXT[a:b], label, 1.0) for k, (a, b, label) in enumerate(ENTITIES)]
    toks = tokenize(tokenizer, [TEXT])
    got = RelationTagger(loaded, tokenizer, s, casing=False).predict([TEXT], toks, [entities])[0]
    want = RelationTagger(model, tokenizer, s, casing=False).predict([TEXT], toks, [entities])[0]
    assert got == want and got, "the reloaded model tags as the saved one did"
