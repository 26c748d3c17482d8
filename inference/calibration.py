"""Calibration: scores that mean what they say, and the error measure behind them.

Two stages, both fitted on the dev split. (1) Temperature scaling of the models' logits
(softmax(logits / T), Guo et al. 2017): one temperature for the NER model's word tags, one for
the relation classifier, fitted by minimising the negative log-likelihood of the gold labels;
it leaves each word's and pair's most probable label as it was. (2) A map from the raw score of
each extracted entity and relation to the share of such extractions that are exactly right on
dev: what a user reads as "right nine times in ten". An entity's raw score is the mean
probability of its word tags; a relation's raw score is its label probability times the two
entity scores (a relation is right only if both entities are).

Entities: Platt scaling (a logistic function of the logit of the raw score), which beat
isotonic maps and histogram binning in cross-validation on dev, with one map for names the
training data annotated ("known") and one for names it never saw ("new"): new names are right
far less often at the same raw score, and new articles hold more of them than dev does, so a
single map fitted on dev is overconfident exactly where the data moves. Relations: a logistic
function of two logits, the label probability's and the calibrated entity scores' product's:
the two are wrong in different ways (the pair classifier is sure where an entity is not), and
weighing them apart ranks relations better than one map of their product (higher test AUROC
and recall at 0.9 precision on every CoNLL04 run measured). BENCHMARKS.md has the alternatives.
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


def fit_logistic(features: list[list[float]], correct: list[bool]) -> list[float]:
    """Weights w (one per feature, then a bias) of p = sigmoid(w . [x, 1]) that minimise the
    log-loss of `correct`; where all or none are correct, nothing can be learnt and w is
    [1, ..., 1, 0] (the sum of the features)."""
    width = len(features[0]) if features else 1
    start = [1.0] * width + [0.0]
    if not features or all(correct) or not any(correct):
        return start
    x = torch.cat([torch.tensor(features, dtype=torch.float64), torch.ones(len(features), 1, dtype=torch.float64)], 1)
    y = torch.tensor(correct, dtype=torch.float64)
    weights = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    optimizer = torch.optim.LBFGS([weights], lr=0.5, max_iter=200, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ weights, y)
        loss.backward()
        return loss

    optimizer.step(closure)
    return weights.detach().tolist()


def fit_platt(scores: list[float], correct: list[bool]) -> tuple[float, float]:
    """(a, b) of p = sigmoid(a * logit(score) + b) that minimise the log-loss of `correct` (Platt 1999);
    (1, 0), which leaves scores as they are, where there is nothing to learn from."""
    a, b = fit_logistic([[logit(s)] for s in scores], correct)
    return a, b


def apply_logistic(features: list[float], weights: list[float] | tuple[float, ...]) -> float:
    """sigmoid(w . [x, 1]) under weights from `fit_logistic`."""
    return sigmoid(sum(w * x for w, x in zip(weights, features)) + weights[-1])


def apply_platt(score: float, ab: tuple[float, float] | list[float]) -> float:
    """The calibrated probability of a raw score under Platt parameters (a, b)."""
    return apply_logistic([logit(score)], ab)


def relation_logits(probability: float, head: float, tail: float) -> list[float]:
    """What the relation map reads: the logits of the label probability and of the product of
    the two entities' calibrated scores."""
    return [logit(probability), logit(head * tail)]


def relation_score(probability: float, head: float, tail: float, weights: list[float] | None) -> float:
    """A relation's score from its label probability and its entities' scores: without `weights`
    (raw scores) their product; with the fitted relation map (`fit_logistic` on
    `relation_logits`), sigmoid(w0 * logit(probability) + w1 * logit(head * tail) + w2)."""
    if weights is None:
        return probability * head * tail
    return apply_logistic(relation_logits(probability, head, tail), weights)


def logit(p: float) -> float:
    p = min(max(p, 1e-6), 1 - 1e-6)
    return math.log(p / (1 - p))


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z)) if z >= 0 else math.exp(z) / (1.0 + math.exp(z))


SCORE_MAPS = ("entity_platt", "relation_map")  # the calibration keys that hold score maps (stage 2)
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


def perfectly_calibrated_eces(scores: list[float], bins: int = 15, draws: int = 200, seed: int = 0) -> np.ndarray:
    """The ECEs a perfectly calibrated scorer giving these scores shows over `draws` outcome sets
    drawn with P(correct) = score: the sampling noise a measured ECE is read against."""
    if not scores:
        return np.zeros(1)
    gen = np.random.default_rng(seed)
    p = np.asarray(scores, dtype=float)
    return np.array([expected_calibration_error(scores, list(gen.random(len(p)) < p), bins) for _ in range(draws)])


def ece_sampling_floor(scores: list[float], bins: int = 15, draws: int = 200, seed: int = 0) -> float:
    """The mean ECE of a perfectly calibrated scorer giving these scores. On a few hundred
    extractions this floor is far from 0, so a measured ECE is read against it."""
    return float(perfectly_calibrated_eces(scores, bins, draws, seed).mean())


def ece_noise(scores: list[float], ece: float, bins: int = 15, draws: int = 200, seed: int = 0) -> dict[str, float]:
    """A measured ECE against sampling noise: the floor (mean ECE of a perfectly calibrated
    scorer with these scores) and p, the share of its draws with an ECE at least `ece` (under
    0.05: miscalibrated beyond what the sample size explains)."""
    eces = perfectly_calibrated_eces(scores, bins, draws, seed)
    return {"floor": float(eces.mean()), "p": float((eces >= ece - 1e-12).mean())}
