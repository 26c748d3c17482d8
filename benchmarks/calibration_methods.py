"""Compare score-calibration methods on a trained run: which map from raw scores to "share right"
holds on new data? (The comparison behind the choice in inference/calibration.py.)

For each of entities and relations: raw (temperature-scaled) scores and exact-match outcomes on
the dev and test splits; each method is fitted on dev and scored by ECE (15 bins) and Brier score
on test, and by 5-fold cross-validation on dev (3 repeats), which is what a choice may rest on.
The Brier score (mean squared error of the score against the outcome) is a proper scoring rule:
it rewards calibration and sharpness alike, where ECE alone rewards coarse maps (a map with five
distinct scores is easy to calibrate and says little).
Relations also get the product's map, which reads the label probability and the entities'
calibrated scores (the run's own entity maps, fitted on all of dev) instead of one raw score.
A last row, not a method, fits the product's map on test itself and scores it there: the least
test ECE that map's family reaches on this model, whatever the calibration data.

    .venv/bin/python benchmarks/calibration_methods.py --model runs/conll04 [--level sentence] [--out FILE]
"""
from __future__ import annotations

import argparse
import copy
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from inference.calibration import (  # noqa: E402
    apply_logistic,
    apply_platt,
    ece_sampling_floor,
    expected_calibration_error,
    fit_grouped_platt,
    fit_logistic,
    fit_platt,
)
from inference.extractor import NewsExtractor  # noqa: E402
from inference.schema import sentence_documents  # noqa: E402
from training.calibrate import relation_map_inputs  # noqa: E402
from training.evaluate import provenance, score_outcomes, write_json  # noqa: E402
from training.readers import read_documents  # noqa: E402

# Raw score, exact match, group (known/new name, or "all"), and for relations the inputs of the
# product's relation map (training.calibrate.relation_map_inputs; empty for entities).
Record = tuple[float, bool, str, list[float]]
Method = Callable[[list[Record]], Callable[[Record], float]]


def platt(records: list[Record]) -> Callable[[Record], float]:
    ab = fit_platt([r[0] for r in records], [r[1] for r in records])
    return lambda r: apply_platt(r[0], ab)


def platt_by_group(records: list[Record]) -> Callable[[Record], float]:
    """The product's map: one Platt fit per group, the pooled one for groups too small to fit."""
    maps = fit_grouped_platt([r[0] for r in records], [r[1] for r in records], [r[2] for r in records])
    return lambda r: apply_platt(r[0], maps.get(r[2], maps["all"]))


def isotonic(records: list[Record]) -> Callable[[Record], float]:
    """Pool adjacent violators, interpolated between block means."""
    blocks: list[list[float]] = []  # [correct, count, score sum]
    for s, ok, *_ in sorted(records, key=lambda r: r[0]):
        blocks.append([float(ok), 1.0, s])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            c, n, t = blocks.pop()
            blocks[-1] = [blocks[-1][0] + c, blocks[-1][1] + n, blocks[-1][2] + t]
    xs, ys = [t / n for _, n, t in blocks], [c / n for c, n, _ in blocks]
    return lambda r: float(np.interp(r[0], xs, ys))


def relation_map(records: list[Record]) -> Callable[[Record], float]:
    """The product's relation map: a logistic function of the label probability's logit and the
    logit of the entities' calibrated scores' product."""
    weights = fit_logistic([r[3] for r in records], [r[1] for r in records])
    return lambda r: apply_logistic(r[3], weights)


def relation_map_isotonic(records: list[Record]) -> Callable[[Record], float]:
    """The product's relation map, then an isotonic map of its output (fitted on the same records):
    its ranking, with a free shape."""
    first = relation_map(records)

    def mapped(r: Record) -> Record:
        return (first(r), *r[1:])

    shape = isotonic([mapped(r) for r in records])
    return lambda r: shape(mapped(r))


def histogram(bins: int) -> Method:
    """Equal-mass bins of the raw score, each mapped to its share right (Zadrozny and Elkan 2001)."""

    def fit(records: list[Record]) -> Callable[[Record], float]:
        scores, right = np.array([r[0] for r in records]), np.array([r[1] for r in records], float)
        edges = np.unique(np.quantile(scores, np.linspace(0, 1, bins + 1)[1:-1]))
        index = np.searchsorted(edges, scores, side="right")
        share = {k: right[index == k].mean() for k in set(index.tolist())}
        return lambda r: share.get(int(np.searchsorted(edges, r[0], side="right")), right.mean())

    return fit


METHODS: dict[str, Method] = {
    "isotonic": isotonic,
    "histogram, 5 bins": histogram(5),
    "histogram, 10 bins": histogram(10),
    "Platt": platt,
    "Platt, known/new": platt_by_group,
}
RELATION_METHODS: dict[str, Method] = {"two logits (label, entities)": relation_map,
                                       "two logits, then isotonic": relation_map_isotonic}
PRODUCT_MAPS: dict[str, str] = {"entities": "Platt, known/new", "relations": "two logits (label, entities)"}


def records(extractor: NewsExtractor, path: Path, data_format: str, level: str, entity_platt: dict) -> dict[str, list[Record]]:
    """Raw-score records of entities and relations extracted from a split (the extractor set to
    temperatures only); `entity_platt` gives the calibrated entity scores the relation map reads."""
    documents = read_documents(path, data_format)
    documents = sentence_documents(documents) if level == "sentence" else documents
    predicted = extractor.predict_articles([d.text for d in documents])
    raw = [extractor.score(copy.deepcopy(a)) for a in predicted]
    symmetric = extractor.relation_tagger.schema.symmetric if extractor.relation_tagger else []
    entities, relations = score_outcomes(documents, raw, symmetric).values()
    groups = [extractor.mention_group(e.text, e.label) for a in raw for e in a.entities]
    temperatures = extractor.calibration
    extractor.set_calibration({**temperatures, "entity_platt": entity_platt})
    logits = relation_map_inputs(extractor, predicted)
    extractor.set_calibration(temperatures)
    return {
        "entities": [(s, ok, g, []) for s, ok, g in zip(entities.scores, entities.correct, groups)],
        "relations": [(s, ok, "all", x) for s, ok, x in zip(relations.scores, relations.correct, logits)],
    }


def auroc(scores: np.ndarray, right: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a right extraction outscores a wrong one (ties half)."""
    pos, neg = scores[right == 1], scores[right == 0]
    if not len(pos) or not len(neg):
        return float("nan")
    return float(((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (len(pos) * len(neg)))


def cross_validated(method: Method, dev: list[Record], repeats: int = 3, folds: int = 5) -> tuple[float, float]:
    """Mean over repeats of the ECE and the Brier score of out-of-fold calibrated scores on dev."""
    gen, eces, briers = np.random.default_rng(0), [], []
    for _ in range(repeats):
        order = gen.permutation(len(dev))
        scores, right = [], []
        for held in np.array_split(order, folds):
            held_set = set(held.tolist())
            fitted = method([dev[k] for k in range(len(dev)) if k not in held_set])
            scores += [fitted(dev[k]) for k in held]
            right += [dev[k][1] for k in held]
        eces.append(expected_calibration_error(scores, right))
        briers.append(float(np.mean((np.array(scores) - np.array(right, float)) ** 2)))
    return float(np.mean(eces)), float(np.mean(briers))


def compare(dev: list[Record], test: list[Record], methods: dict[str, Method], product: str) -> dict[str, dict[str, float]]:
    """Each method's dev cross-validated ECE and Brier score, and its test ECE and Brier score when
    fitted on all of dev; then the `product` method fitted on test and scored there (an oracle)."""
    right = np.array([r[1] for r in test], float)
    raw = np.array([r[0] for r in test])
    rows = {"raw": {"test_ece": expected_calibration_error(list(raw), list(right.astype(bool))),
                    "test_brier": float(np.mean((raw - right) ** 2)), "test_auroc": auroc(raw, right)}}

    def on_test(fitted: Callable[[Record], float]) -> dict[str, float]:
        scores = np.array([fitted(r) for r in test])
        return {"test_ece": expected_calibration_error(list(scores), list(right.astype(bool))),
                "test_brier": float(np.mean((scores - right) ** 2)), "test_auroc": auroc(scores, right),
                "test_ece_floor": ece_sampling_floor(list(scores))}

    for name, method in methods.items():
        cv_ece, cv_brier = cross_validated(method, dev)
        rows[name] = {"dev_cv_ece": cv_ece, "dev_cv_brier": cv_brier, **on_test(method(dev))}
    rows[f"{product}, fitted on test (oracle)"] = on_test(methods[product](test))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="run directory (its known_mentions.json is used)")
    parser.add_argument("--level", choices=["sentence", "article"], default="sentence")
    parser.add_argument("--out", type=Path, help="write the table as JSON")
    args = parser.parse_args()
    extractor = NewsExtractor.from_pretrained(args.model, calibrated=False)
    # Temperatures only: the maps compared here replace the run's own (its entity maps feed the relation map).
    calibration = extractor.settings.get("calibration") or {}
    extractor.set_calibration({k: v for k, v in calibration.items() if k.endswith("temperature")})
    data = extractor.settings["config"]["data"]
    split = {s: records(extractor, Path(data["root"]) / data[s], data["format"], args.level, calibration["entity_platt"])
             for s in ("dev", "test")}
    result = {"model": str(args.model), "encoder": extractor.settings["encoder"], "level": args.level,
              "data": {s: str(Path(data["root"]) / data[s]) for s in ("dev", "test")}, **provenance()}
    for kind in ("entities", "relations"):
        if not split["dev"][kind]:
            continue
        result[kind] = {"dev": len(split["dev"][kind]), "test": len(split["test"][kind]),
                        "methods": compare(split["dev"][kind], split["test"][kind],
                                           {**METHODS, **(RELATION_METHODS if kind == "relations" else {})},
                                           PRODUCT_MAPS[kind])}
        print(f"{kind}: {result[kind]['dev']} dev, {result[kind]['test']} test extractions")
        print(f"  {'method':<54}{'dev CV ECE':>12}{'dev CV Brier':>14}{'test ECE':>10}{'floor':>8}{'test Brier':>12}{'AUROC':>8}")
        for name, row in result[kind]["methods"].items():
            print(f"  {name:<54}{row.get('dev_cv_ece', float('nan')):>12.4f}{row.get('dev_cv_brier', float('nan')):>14.4f}"
                  f"{row['test_ece']:>10.4f}{row.get('test_ece_floor', float('nan')):>8.4f}{row['test_brier']:>12.4f}"
                  f"{row['test_auroc']:>8.3f}")
    if args.out:
        write_json(result, args.out)


if __name__ == "__main__":
    main()
