"""Calibration: scores that mean what they say, and the error measure behind them.

Two stages, both fitted on the dev split. (1) Temperature scaling of the models' logits
(softmax(logits / T), Guo et al. 2017): one temperature for the NER model's word tags, one for
the relation classifier, fitted by minimising the negative log-likelihood of the gold labels;
it leaves each word's and pair's most probable label as it was. (2) An isotonic map from the
raw score of each extracted entity and relation to the share of such extractions that are
exactly right on dev: what a user reads as "right nine times in ten". Raw scores: an entity's
is the mean probability of its word tags; a relation's is its label probability times the two
entity scores (a relation is right only if both entities are).
"""
from __future__ import annotations

import math

import numpy as np
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


def calibration_bins(scores: list[float], correct: list[bool], bins: int = 15) -> list[tuple[float, float, int]]:
    """(mean score, share correct, count) of each non-empty equal-width score bin, lowest first."""
    members: list[list[int]] = [[] for _ in range(bins)]
    for k, s in enumerate(scores):
        members[min(bins - 1, max(0, math.ceil(s * bins) - 1))].append(k)
    return [
        (sum(scores[k] for k in m) / len(m), sum(correct[k] for k in m) / len(m), len(m)) for m in members if m
    ]


def expected_calibration_error(scores: list[float], correct: list[bool], bins: int = 15) -> float:
    """ECE over `bins` equal-width score bins: sum over bins of |accuracy - mean score| x share."""
    return sum(abs(acc - conf) * n for conf, acc, n in calibration_bins(scores, correct, bins)) / max(1, len(scores))


def fit_isotonic(scores: list[float], correct: list[bool]) -> tuple[list[float], list[float]]:
    """A non-decreasing map from score to the share of correct predictions (pool adjacent
    violators), as the knots (score, probability) of a piecewise-linear function."""
    if not scores:
        return [0.0, 1.0], [0.0, 1.0]
    order = sorted(range(len(scores)), key=scores.__getitem__)
    blocks: list[list[float]] = []  # [sum of correct, count, sum of scores]
    for k in order:
        blocks.append([float(correct[k]), 1.0, scores[k]])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            c, n, s = blocks.pop()
            blocks[-1] = [blocks[-1][0] + c, blocks[-1][1] + n, blocks[-1][2] + s]
    xs = [s / n for _, n, s in blocks]
    ys = [c / n for c, n, _ in blocks]
    return xs, ys


def apply_isotonic(score: float, knots: tuple[list[float], list[float]]) -> float:
    """The calibrated probability of a raw score (constant beyond the outermost knots)."""
    return float(np.interp(score, knots[0], knots[1]))
