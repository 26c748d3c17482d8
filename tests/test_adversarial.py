"""FGM adversarial training (`ner.adversarial_epsilon`, training/loop.py): the extra gradient is
the loss's at the moved word-embedding table, the table is put back exactly, and the loop takes
the step only when asked."""
from __future__ import annotations

import copy

import pytest
import torch
from accelerate import Accelerator
from datasets import Dataset
from transformers import BertConfig, BertForTokenClassification

from inference.relations import RelationModel
from training.config import ConfigError, OptimConfig, load_config
from training.loop import adversarial_step, fit, word_embeddings

BATCH = {"input_ids": torch.tensor([[1, 5, 7, 2], [1, 9, 2, 0]]), "labels": torch.tensor([[-100, 1, 2, -100], [-100, 0, -100, -100]])}


def tiny_tagger() -> BertForTokenClassification:
    torch.manual_seed(0)
    config = BertConfig(vocab_size=20, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=16, num_labels=3, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    return BertForTokenClassification(config)


def grads(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}


def test_the_adversarial_gradient_is_the_losss_at_the_moved_table_and_the_table_is_put_back():
    model = tiny_tagger()
    table = model.get_input_embeddings().weight
    before = table.detach().clone()
    model(**BATCH).loss.backward()
    clean = grads(model)
    # By hand: the table moved by 1.5 along its gradient's direction, on a copy.
    moved = copy.deepcopy(model)
    moved.zero_grad()
    with torch.no_grad():
        moved.get_input_embeddings().weight += 1.5 * clean["bert.embeddings.word_embeddings.weight"] / clean[
            "bert.embeddings.word_embeddings.weight"].norm()
    moved(**BATCH).loss.backward()
    adversarial = grads(moved)

    adversarial_step(Accelerator(cpu=True), model, BATCH, epsilon=1.5)
    assert torch.equal(table.detach(), before)  # exactly, not up to rounding
    after = grads(model)
    assert after.keys() == clean.keys()
    for name in clean:
        torch.testing.assert_close(after[name], clean[name] + adversarial[name])
    assert not torch.allclose(adversarial["classifier.weight"], clean["classifier.weight"])  # the move mattered


def test_no_gradient_no_step():
    model = tiny_tagger()  # nothing backpropagated yet
    adversarial_step(Accelerator(cpu=True), model, BATCH, epsilon=1.0)
    assert all(p.grad is None for p in model.parameters())


def test_word_embeddings_are_found_inside_wrappers_and_their_absence_is_reported():
    tagger = tiny_tagger()
    assert word_embeddings(tagger) is tagger.get_input_embeddings()
    relations = RelationModel(tagger.bert, num_labels=2)
    assert word_embeddings(relations) is tagger.bert.get_input_embeddings()
    with pytest.raises(ValueError, match="Linear holds no Hugging Face model"):
        word_embeddings(torch.nn.Linear(2, 2))


@pytest.mark.parametrize("epsilon, calls_per_step", [(None, 1), (1.0, 2)])
def test_the_loop_reads_each_batch_twice_only_with_an_epsilon(epsilon: float | None, calls_per_step: int):
    model, calls = tiny_tagger(), []
    model.register_forward_hook(lambda *_: calls.append(1))
    rows = [{"input_ids": ids.tolist(), "labels": labels.tolist()} for ids, labels in zip(BATCH["input_ids"], BATCH["labels"])]
    hp = OptimConfig(epochs=1, batch_size=2, learning_rate=1e-3, max_steps=3, adversarial_epsilon=epsilon)
    collate = lambda batch: {k: torch.tensor([row[k] for row in batch]) for k in ("input_ids", "labels")}  # noqa: E731
    fit(Accelerator(cpu=True), model, Dataset.from_list(rows * 3), collate, hp, seed=1, desc="NER", dev_score=lambda m: 0.5)
    assert len(calls) == 3 * calls_per_step


def test_a_negative_epsilon_is_refused_at_load(tiny_config):
    with pytest.raises(ConfigError, match="adversarial_epsilon"):
        load_config(tiny_config, ["ner.adversarial_epsilon=-1"])
