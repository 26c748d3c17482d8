"""A linear-chain CRF over word tags (`ner.crf`): learned start, transition and end scores.

Without it each word's tag is trained on its own (cross-entropy) and decoding only forbids
invalid IOB2 sequences. With it training maximises the likelihood of each window's whole tag
sequence (emissions = the model's word logits, plus the scores here), and decoding takes the
best-scoring sequence under the same scores and the IOB2 constraints (`inference.ner.best_path`).
Entity scores still come from the word-tag probabilities (softmax of the logits), so calibration
is unchanged. The scores are saved beside the NER model as `crf.safetensors`; the model itself
stays a standard token-classification checkpoint, which a plain `transformers.pipeline` reads
(without the transition scores).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

CRF_FILE = "crf.safetensors"


class TagTransitions(torch.nn.Module):
    """Start, transition ([i, j]: tag j after tag i) and end scores of a linear-chain CRF."""

    def __init__(self, num_labels: int) -> None:
        super().__init__()
        # Zero: training starts from the per-word model the plain recipe would train.
        self.start = torch.nn.Parameter(torch.zeros(num_labels))
        self.transitions = torch.nn.Parameter(torch.zeros(num_labels, num_labels))
        self.end = torch.nn.Parameter(torch.zeros(num_labels))

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of the tag sequences: `emissions` (batch x words x labels),
        `tags` (batch x words), `mask` (batch x words, each row's words first, then padding).
        Rows without words count for nothing."""
        emissions, mask = emissions.float(), mask.bool()
        rows = mask.any(1)
        emissions, tags, mask = emissions[rows], tags[rows].clamp_min(0), mask[rows]
        if len(tags) == 0:
            return emissions.sum() * 0.0  # keeps the graph: every process must call backward
        steps = mask[:, 1:].float()
        index = torch.arange(len(tags), device=tags.device)
        gold = self.start[tags[:, 0]] + emissions.gather(2, tags[..., None]).squeeze(2).mul(mask).sum(1)
        gold = gold + (self.transitions[tags[:, :-1], tags[:, 1:]] * steps).sum(1)
        gold = gold + self.end[tags[index, mask.sum(1) - 1]]
        alpha = self.start + emissions[:, 0]
        for w in range(1, emissions.shape[1]):
            step = torch.logsumexp(alpha[:, :, None] + self.transitions, dim=1) + emissions[:, w]
            alpha = torch.where(mask[:, w, None], step, alpha)
        log_z = torch.logsumexp(alpha + self.end, dim=1)
        return (log_z - gold).mean()

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(start, transitions, end) as float64 NumPy arrays, for decoding."""
        return tuple(p.detach().double().cpu().numpy() for p in (self.start, self.transitions, self.end))

    def save(self, directory: Path) -> None:
        save_file({k: v.detach().contiguous() for k, v in self.state_dict().items()}, str(Path(directory) / CRF_FILE))

    @classmethod
    def load(cls, directory: Path) -> TagTransitions | None:
        """The scores saved in a model directory, or None where it holds none (a model without CRF)."""
        path = Path(directory) / CRF_FILE
        if not path.is_file():
            return None
        state = load_file(str(path))
        crf = cls(len(state["start"]))
        crf.load_state_dict(state)
        return crf


def word_sequences(logits: torch.Tensor, labels: torch.Tensor, ignore: int = -100) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The labelled positions of token-classification outputs packed to the front of each row
    (a word's first subword carries its tag): (emissions, tags, mask) for `TagTransitions.nll`."""
    unlabelled = (labels == ignore).int()
    order = torch.sort(unlabelled, dim=1, stable=True).indices
    tags = labels.gather(1, order)
    emissions = logits.gather(1, order[..., None].expand(-1, -1, logits.shape[-1]))
    width = max(1, int((tags != ignore).sum(1).max()))
    return emissions[:, :width], tags[:, :width], tags[:, :width] != ignore


def mean_transitions(found: list[TagTransitions | None], where: str) -> TagTransitions | None:
    """One CRF for an ensemble's members: the mean of their scores (their probabilities are
    averaged likewise); an error where some members have one and others not."""
    if all(c is None for c in found):
        return None
    if any(c is None for c in found):
        raise ValueError(f"{where}: some members have a CRF ({CRF_FILE}) and others not")
    mean = TagTransitions(len(found[0].start))
    with torch.no_grad():
        for name, param in mean.named_parameters():
            param.copy_(torch.stack([c.state_dict()[name] for c in found]).mean(0))
    return mean
