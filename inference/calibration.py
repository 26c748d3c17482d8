"""Calibration: scores that mean what they say, and the error measure behind them.

Two stages, both fitted on the dev split. (1) Temperature scaling of the models' logits
(softmax(logits / T), Guo et al. 2017): one temperature for the NER model's word tags, one for
the relation classifier, fitted by minimising the negative log-likelihood of the gold labels;
it leaves each word's and pair's most probable label as it was. (2) A map from the raw score of
each extracted entity and relation to the share of such extractions that are exactly right on
dev: what a user reads as "right nine times in ten". Raw scores: an entity's is the mean
probability of its word tags; a relation's is its label probability times the two entity
scores (a relation is right only if both entities are).

The map is Platt scaling (a logistic function of the logit of the raw score), which beat
isotonic maps and histogram binning in cross-validation on dev. Entities get one map for names
the training data annotated ("known") and one for names it never saw ("new"): new names are
right far less often at the same raw score, and new articles hold more of them than dev does,
so a single map fitted on dev is overconfident exactly where the data moves. BENCHMARKS.md has
the alternatives measured.
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


def fit_platt(scores: list[float], correct: list[bool]) -> tuple[float, float]:
    """(a, b) of p = sigmoid(a * logit(score) + b) that minimise the log-loss of `correct` (Platt 1999)."""
    if not scores or all(correct) or not any(correct):
        return 1.0, 0.0  # nothing to learn a slope from: leave the scores as they are
    x, y = _logit(torch.tensor(scores, dtype=torch.float64)), torch.tensor(correct, dtype=torch.float64)
    params = torch.tensor([1.0, 0.0], dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([params], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(params[0] * x + params[1], y)
        loss.backward()
        return loss

    optimizer.step(closure)
    a, b = params.detach().tolist()
    return a, b


def apply_platt(score: float, ab: tuple[float, float] | list[float]) -> float:
    """The calibrated probability of a raw score under Platt parameters (a, b)."""
    z = ab[0] * float(_logit(torch.tensor(score, dtype=torch.float64))) + ab[1]
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


def _logit(p: torch.Tensor) -> torch.Tensor:
    p = p.clamp(1e-6, 1 - 1e-6)
    return torch.log(p / (1 - p))


MIN_GROUP = 30  # fewer dev extractions than this in a group: the group shares the pooled map


def fit_grouped_platt(scores: list[float], correct: list[bool], groups: list[str]) -> dict[str, list[float]]:
    """Platt parameters per group, and "all" (pooled) for groups too small to fit alone."""
    fitted = {"all": list(fit_platt(scores, correct))}
    for group in sorted(set(groups)):
        members = [k for k, g in enumerate(groups) if g == group]
        if len(members) >= MIN_GROUP:
            fitted[group] = list(fit_platt([scores[k] for k in members], [correct[k] for k in members]))
    return fitted


def mention_key(text: str) -> str:
    """How a name is compared with the training data's names: lower case, spaces collapsed."""
    return " ".join(text.lower().split())


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


def ece_sampling_floor(scores: list[float], bins: int = 15, draws: int = 200, seed: int = 0) -> float:
    """The mean ECE of a perfectly calibrated scorer giving these scores: outcomes drawn with
    P(correct) = score. On a few hundred extractions this floor is far from 0, so a measured
    ECE is read against it."""
    if not scores:
        return 0.0
    gen = np.random.default_rng(seed)
    p = np.asarray(scores, dtype=float)
    return float(np.mean([expected_calibration_error(scores, list(gen.random(len(p)) < p), bins) for _ in range(draws)]))
