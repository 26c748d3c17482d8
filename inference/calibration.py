"""Calibration: temperature scaling of the models' logits, and the error measure behind it.

A temperature T > 1 softens over-confident probabilities (softmax(logits / T)); it is fitted on
the dev split by minimising the negative log-likelihood of the gold labels (Guo et al. 2017), one
temperature for the NER model's word tags and one for the relation classifier. It leaves each
word's and each pair's most probable label as it was; only where constrained decoding
arbitrates between invalid tag sequences can the chosen path change.
"""
from __future__ import annotations

import torch


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """The temperature that minimises the NLL of `labels` under softmax(logits / T)."""
    if len(labels) == 0:
        return 1.0
    # clone(): tensors made under inference mode cannot take part in autograd.
    logits, labels = logits.detach().float().clone(), labels.detach().long().clone()
    log_t = torch.zeros(1, requires_grad=True)  # optimise log T so that T stays positive
    optimizer = torch.optim.LBFGS([log_t], lr=0.1, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(logits / log_t.exp(), labels)
        loss.backward()
        return loss

    optimizer.step(closure)
    return float(log_t.detach().exp())


def expected_calibration_error(scores: list[float], correct: list[bool], bins: int = 15) -> float:
    """ECE over `bins` equal-width score bins: sum over bins of |accuracy - mean score| x share."""
    if not scores:
        return 0.0
    total = len(scores)
    error = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [k for k, s in enumerate(scores) if lo < s <= hi or (b == 0 and s == 0.0)]
        if members:
            accuracy = sum(correct[k] for k in members) / len(members)
            confidence = sum(scores[k] for k in members) / len(members)
            error += abs(accuracy - confidence) * len(members) / total
    return error
