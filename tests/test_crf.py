"""The CRF over word tags: its likelihood and decoding against brute force, and a run trained with it."""
from __future__ import annotations

import itertools
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from inference import NewsExtractor
from inference.crf import CRF_FILE, TagTransitions, mean_transitions, word_sequences
from inference.extractor import RunDirectoryError
from inference.ner import best_path, forbid, iob2_transitions
from training.cli import main as training_main


def random_crf(labels: int, seed: int) -> TagTransitions:
    crf = TagTransitions(labels)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in crf.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))
    return crf


def path_score(crf: TagTransitions, emissions: torch.Tensor, tags: tuple[int, ...]) -> torch.Tensor:
    score = crf.start[tags[0]] + crf.end[tags[-1]] + sum(emissions[w, t] for w, t in enumerate(tags))
    return score + sum(crf.transitions[a, b] for a, b in zip(tags, tags[1:]))


def test_nll_is_the_negative_log_likelihood_of_the_gold_sequence_among_all():
    crf, labels = random_crf(3, seed=0), 3
    emissions = torch.randn(2, 4, labels, generator=torch.Generator().manual_seed(1))
    tags = torch.tensor([[2, 0, 1, 1], [1, 2, 0, 0]])
    mask = torch.tensor([[True, True, True, True], [True, True, False, False]])  # row 2: two words, then padding
    expected = []
    for row, length in enumerate(mask.sum(1).tolist()):
        e = emissions[row, :length]
        log_z = torch.logsumexp(torch.stack([path_score(crf, e, p) for p in itertools.product(range(labels), repeat=length)]), 0)
        expected.append(log_z - path_score(crf, e, tuple(tags[row, :length].tolist())))
    assert crf.nll(emissions, tags, mask).item() == pytest.approx(torch.stack(expected).mean().item(), abs=1e-5)
    # Rows without words count for nothing; a batch without any still gives a loss to call backward on.
    empty = torch.zeros(1, 4, dtype=torch.bool)
    both = crf.nll(torch.cat([emissions, emissions[:1]]), torch.cat([tags, tags[:1]]), torch.cat([mask, empty]))
    assert both.item() == pytest.approx(crf.nll(emissions, tags, mask).item(), abs=1e-6)
    assert crf.nll(emissions[:1], tags[:1], empty).item() == 0.0


def test_best_path_is_the_highest_scoring_valid_sequence():
    labels = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    start, allowed = iob2_transitions(labels)
    crf = random_crf(len(labels), seed=2)
    s, t, e = (a.astype(np.float64) for a in crf.arrays())
    start_scores, transitions = s + forbid(start), t + forbid(allowed)
    gen = np.random.default_rng(3)
    for words in (1, 2, 4):
        scores = gen.normal(size=(words, len(labels)))

        def total(path: tuple[int, ...]) -> float:
            return start_scores[path[0]] + e[path[-1]] + sum(scores[w, k] for w, k in enumerate(path)) + sum(
                transitions[a, b] for a, b in zip(path, path[1:])
            )

        best = max(itertools.product(range(len(labels)), repeat=words), key=total)
        assert tuple(best_path(scores, start_scores, transitions, e)) == best
        assert np.isfinite(total(best))  # the constraints hold: a valid IOB2 sequence
    assert best_path(np.zeros((0, len(labels))), start_scores, transitions, e) == []


def test_word_sequences_pack_the_labelled_positions_to_the_front():
    logits = torch.arange(2 * 5 * 2, dtype=torch.float32).reshape(2, 5, 2)
    labels = torch.tensor([[-100, 1, -100, 0, -100], [-100, 0, 1, 1, -100]])
    emissions, tags, mask = word_sequences(logits, labels)
    assert tags.tolist() == [[1, 0, -100], [0, 1, 1]]
    assert mask.tolist() == [[True, True, False], [True, True, True]]
    assert emissions[0, :2].tolist() == [logits[0, 1].tolist(), logits[0, 3].tolist()]
    assert emissions[1].tolist() == logits[1, 1:4].tolist()


def test_ensemble_members_must_agree_on_a_crf():
    a, b = random_crf(3, seed=4), random_crf(3, seed=5)
    mean = mean_transitions([a, b], "ens")
    assert torch.allclose(mean.transitions, (a.transitions + b.transitions) / 2)
    assert mean_transitions([None, None], "ens") is None
    with pytest.raises(ValueError, match="some members have a CRF"):
        mean_transitions([a, None], "ens")


def test_a_run_trained_with_a_crf_saves_loads_and_decodes_with_it(tiny_config: Path, tmp_path: Path, capsys):
    out = tmp_path / "crf"
    args = ["train", "--config", str(tiny_config), "--output", str(out), "--set", "relations=null"]
    assert training_main([*args, "--set", "ner.crf=true", "--set", "ner.crf_learning_rate=0.05"]) == 0
    settings = json.loads((out / "extractor.json").read_text())
    assert settings["config"]["ner"]["crf"] is True
    saved = TagTransitions.load(out / "ner")
    assert saved is not None and saved.transitions.abs().max() > 0  # the scores trained
    extractor = NewsExtractor.from_pretrained(out, device="cpu")
    assert extractor.tagger.crf is not None
    text = "John Smith lives in Paris. Mary Jones works for Acme Corp in London."
    entities = extractor.extract(text).entities
    assert all(text[e.start : e.end] == e.text for e in entities)
    # Decoding reads the CRF's scores: a start score that forbids every tag but B-X makes the first
    # word an X, whatever the model says (X: a type other than the one it gives the first word now).
    first = extractor.tagger.predict([text])[0]
    now = first[0].label if first and first[0].start == 0 else None
    forced = next(label for label in settings["entity_labels"] if label != now)
    label2id = {v: k for k, v in extractor.tagger.id2label.items()}
    with torch.no_grad():
        saved.start.fill_(-1e4)
        saved.start[label2id[f"B-{forced}"]] = 0.0
    saved.save(out / "ner")
    forced_first = NewsExtractor.from_pretrained(out, device="cpu").tagger.predict([text])[0][0]
    assert (forced_first.start, forced_first.label) == (0, forced)
    # A damaged CRF file is a clear error, not a traceback.
    (out / "ner" / CRF_FILE).write_bytes(b"not safetensors")
    with pytest.raises(RunDirectoryError, match=CRF_FILE):
        NewsExtractor.from_pretrained(out, device="cpu")
    # A teacher's per-word targets and a CRF do not mix.
    other = tmp_path / "both"
    shutil.rmtree(other, ignore_errors=True)
    both = ["train", "--config", str(tiny_config), "--output", str(other), "--set", "ner.crf=true", "--set", f"ner.distill.teacher={out}"]
    assert training_main(both) == 2
    assert "ner.crf and ner.distill cannot be combined" in capsys.readouterr().err
