"""Encoders without token-type embeddings (MPNet): the shape table, training, saving, loading and
ONNX export end to end, on a tiny random MPNet that shares MiniLM's vocabulary."""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoModelForTokenClassification, MPNetConfig, MPNetForTokenClassification

from inference import NewsExtractor
from inference.casing import SHAPES_FILE, enable_shape_embeddings, load_shape_table, save_encoder, shape_parameters
from inference.encoders import resolve_encoder
from inference.windows import tokenize

TEXT = "John Smith works for Acme Corp in Boston. Maria Lopez lives in Paris since Monday."


@pytest.fixture(scope="module")
def tiny_mpnet(tokenizer, tmp_path_factory) -> Path:
    """A random two-layer MPNet saved like a pretrained encoder (config, safetensors, tokenizer)."""
    directory = tmp_path_factory.mktemp("mpnet")
    config = MPNetConfig(
        vocab_size=tokenizer.vocab_size, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, max_position_embeddings=130, pad_token_id=tokenizer.pad_token_id,
    )
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(directory, safe_serialization=True)
    tokenizer.save_pretrained(directory)
    return directory


def _classifier(directory: Path) -> MPNetForTokenClassification:
    torch.manual_seed(1)
    return AutoModelForTokenClassification.from_pretrained(directory, num_labels=3, use_safetensors=True).eval()


def _batch(shapes: int) -> dict[str, torch.Tensor]:
    ids = torch.tensor([[101, 2198, 3044, 102, 0]])
    return {"input_ids": ids, "attention_mask": (ids != 0).long(), "token_type_ids": torch.full_like(ids, shapes)}


def test_shape_table_starts_as_the_unchanged_encoder_and_then_carries_shapes(tiny_mpnet: Path):
    model = _classifier(tiny_mpnet)
    plain = model(**{k: v for k, v in _batch(0).items() if k != "token_type_ids"}).logits
    enable_shape_embeddings(model)
    torch.testing.assert_close(model(**_batch(2)).logits, plain)  # zero-initialised table
    with torch.no_grad():
        model.get_input_embeddings().shapes.weight[2] = torch.linspace(-1, 1, 64)  # not constant: LayerNorm follows
    assert not torch.allclose(model(**_batch(2)).logits, plain), "title-case shapes must change the output"
    torch.testing.assert_close(model(**_batch(1)).logits, plain)  # other rows untouched
    # A copy of the encoder alone (relations.init: ner) keeps the table and takes shapes itself.
    encoder = copy.deepcopy(model.base_model)
    states = model.base_model(**_batch(2)).last_hidden_state
    torch.testing.assert_close(encoder(**_batch(2)).last_hidden_state, states)


def test_saved_table_lies_beside_a_standard_checkpoint(tiny_mpnet: Path, tmp_path: Path):
    model = _classifier(tiny_mpnet)
    enable_shape_embeddings(model)
    with torch.no_grad():
        model.get_input_embeddings().shapes.weight.normal_()
    save_encoder(model, tmp_path)
    assert (tmp_path / SHAPES_FILE).is_file()
    plain = AutoModelForTokenClassification.from_pretrained(tmp_path, use_safetensors=True).eval()
    assert not any("shapes" in k for k in plain.state_dict()), "model.safetensors stays a standard checkpoint"
    restored = load_shape_table(plain, tmp_path)
    torch.testing.assert_close(restored(**_batch(3)).logits, model(**_batch(3)).logits)


def test_mpnet_run_trains_loads_and_exports(tiny_mpnet: Path, tiny_config: Path, tmp_path: Path):
    from inference.cli import main as inference_main
    from training.cli import main as training_main

    run = tmp_path / "run"
    overrides = [f"encoder={tiny_mpnet}", "relations.init=ner", "ner.epochs=1", "relations.epochs=1"]
    assert training_main(["train", "--config", str(tiny_config), "--output", str(run), *sum((["--set", o] for o in overrides), [])]) == 0
    for part in ("ner", "relations"):
        assert (run / part / SHAPES_FILE).is_file(), part
    extractor = NewsExtractor.from_pretrained(run, device="cpu")
    article = extractor.extract(TEXT)
    assert all(TEXT[e.start : e.end] == e.text for e in article.entities)
    # The loaded table is the trained one: lower-casing the text changes the NER logits.
    tagger = extractor.tagger
    cased = tagger.word_logits(tokenize(tagger.tokenizer, [TEXT]))[0]
    lowered = tagger.word_logits(tokenize(tagger.tokenizer, [TEXT.lower()]))[0]
    assert not torch.allclose(cased, lowered)
    # ONNX: the graph takes the shapes too and reproduces the torch logits.
    pytest.importorskip("onnxruntime")
    onnx_dir = tmp_path / "onnx"
    assert inference_main(["export-onnx", "--model", str(run), "--out", str(onnx_dir)]) == 0
    onnx_tagger = NewsExtractor.from_pretrained(run, backend="onnx", onnx_dir=onnx_dir).tagger
    torch.testing.assert_close(onnx_tagger.word_logits(tokenize(tagger.tokenizer, [TEXT]))[0], cased, atol=1e-4, rtol=1e-4)


def test_real_mpnet_tokenizer_has_the_relation_markers():
    from transformers import AutoTokenizer

    from inference.encoders import EncoderNotFound

    try:
        directory = resolve_encoder("mpnet")
    except EncoderNotFound:
        pytest.skip("all-mpnet-base-v2 is not installed")
    tok = AutoTokenizer.from_pretrained(directory)
    assert tok.unk_token_id not in tok.convert_tokens_to_ids([f"[unused{k}]" for k in range(8)])


@pytest.mark.parametrize("encoder", ["mpnet", "minilm"])
def test_shape_table_learns_at_its_own_rate(encoder: str, tiny_mpnet: Path):
    """`casing_learning_rate` puts the shape table (MPNet's own, or MiniLM's grown token-type
    table) in an optimizer group of its own: Adam's first step moves each weight by about its
    group's rate, so the table moves 100 times further than the word embeddings."""
    from training.config import OptimConfig
    from training.loop import parameter_groups

    directory = tiny_mpnet if encoder == "mpnet" else resolve_encoder("minilm")
    model = _classifier(directory).train()
    enable_shape_embeddings(model)
    table = shape_parameters(model)
    assert len(table) == 1 and table[0].shape[0] == 5
    groups = parameter_groups(model, OptimConfig(learning_rate=1e-5, casing_learning_rate=1e-3))
    assert sum(len(g["params"]) for g in groups) == len(list(model.parameters()))
    words, shapes = model.get_input_embeddings().weight, table[0]
    before = words.detach().clone(), shapes.detach().clone()
    optimizer = torch.optim.AdamW(groups, lr=1e-5, weight_decay=0.0)
    model(**_batch(2)).logits.sum().backward()
    optimizer.step()
    word_step = (words.detach() - before[0]).abs().max().item()
    shape_step = (shapes.detach() - before[1])[2].abs().max().item()  # row 2 (title case) was used
    assert word_step == pytest.approx(1e-5, rel=0.1) and shape_step == pytest.approx(1e-3, rel=0.1)
    # Without the setting: one group at the encoder's rate.
    assert len(parameter_groups(model, OptimConfig(learning_rate=1e-5))) == 1


def test_shape_learning_rate_without_a_shape_table_is_refused(tiny_mpnet: Path):
    from training.config import OptimConfig
    from training.loop import parameter_groups

    with pytest.raises(ValueError, match="no word-shape table"):
        parameter_groups(_classifier(tiny_mpnet), OptimConfig(casing_learning_rate=1e-3))
