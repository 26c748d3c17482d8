"""MODEL_CARD.md of a run directory: what the model is, what it was trained and scored on, what it is for.

Written by training (dev figures) and refreshed by `evaluate` on the run's own test split (test
figures). Every figure comes from the run's extractor.json or the metrics just computed.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from inference.calibration import SCORE_MAPS
from inference.extractor import SETTINGS_FILE

CARD_FILE = "MODEL_CARD.md"


def lowercases(run_dir: Path) -> bool:
    """Whether the run's tokenizer lowercases its input (an uncased encoder)."""
    path = run_dir / "ner" / "tokenizer_config.json"
    return path.is_file() and bool(json.loads(path.read_text(encoding="utf-8")).get("do_lower_case"))


def _micro(scores: dict[str, Any]) -> str:
    m = scores["micro"]
    return f"F1 **{m['f1']:.3f}** (precision {m['precision']:.3f}, recall {m['recall']:.3f}, {m['support']} gold)"


def _per_type(scores: dict[str, Any]) -> str:
    return ", ".join(f"{t} {r['f1']:.3f}" for t, r in sorted(scores["per_type"].items()))


def _recipe(config: dict[str, Any], part: str) -> str:
    """How a part was optimised, as one phrase, from the run's stored config."""
    hp = config.get(part) or {}
    bits = [f"learning rate {hp.get('learning_rate')}", f"batch {hp.get('batch_size')}", f"warm-up {hp.get('warmup_ratio')}"]
    if hp.get("casing_learning_rate") is not None:
        bits.append(f"shape table at {hp['casing_learning_rate']}")
    if hp.get("adversarial_epsilon"):
        bits.append(f"FGM adversarial steps (epsilon {hp['adversarial_epsilon']})")
    return ", ".join(bits + [f"mixed precision {config.get('mixed_precision', 'no')}"])


def model_card(run_dir: Path, settings: dict[str, Any], metrics: dict[str, Any] | None = None) -> str:
    """The card's markdown, from a run's settings (extractor.json) and, if given, its test metrics."""
    config, training = settings.get("config", {}), settings.get("training", {})
    relations = settings.get("relations") or {}
    uncased = lowercases(run_dir)
    lines = [
        f"# Model card: {config.get('name', run_dir.name)}",
        "",
        "Entities (and relations) in English news text, with character offsets and calibrated scores; "
        "a run directory of news-extract, loaded with `NewsExtractor.from_pretrained(RUN)` or "
        "`python -m inference predict|serve --model RUN`.",
        "",
        "## Model",
        f"- encoder: `{settings['encoder']}`{' (uncased: it lowercases its input)' if uncased else ''}; "
        f"word-shape (casing) signal: {'yes' if settings.get('casing') else 'no'}",
        f"- entity types: {', '.join(settings['entity_labels'])}",
    ]
    if relations:
        pairs = ", ".join(f"{h}→{t}" for h, t in relations.get("allowed", []))
        lines.append(f"- relation types: {', '.join(relations['labels'])} (symmetric: {', '.join(relations.get('symmetric') or []) or 'none'}); "
                     f"entity-type pairs considered: {pairs}")
    window = settings["window"]
    reads = "each sentence alone" if window.get("sentences") else "across sentences"
    lines.append(f"- windows: {window['max_length']} tokens, stride {window['stride']}, {reads}; seed {config.get('seed')}")
    lines += ["", "## Data", "| split | file | sha256 |", "|---|---|---|"]
    lines += [f"| {split} | `{d['path']}` | `{d['sha256']}` |" for split, d in settings.get("data", {}).items()]
    train_file = config.get("data", {}).get("train", "its training split")
    if config.get("refit"):
        train_file += f"` and `{config['data']['dev']}"
    lines += ["", f"Corpus format `{config.get('data', {}).get('format')}`.", "", "## Training and dev figures"]
    for part in ("ner", "relations"):
        r = training.get(part)
        if r:
            epochs = len(r.get("history", []))
            if r["best_dev"] is None:
                lines.append(f"- {part}: trained on train + dev for {epochs} epochs (a refit of `{config.get('refit')}`, "
                             f"which chose them on dev), {r['seconds']:.0f} s on {r['device']}")
            else:
                lines.append(f"- {part}: best dev F1 {r['best_dev']:.3f} after {epochs} epochs evaluated, {r['seconds']:.0f} s on {r['device']}")
            lines.append(f"  - {_recipe(config, part)}")
            lines += [f"  - dev F1 fell to 0 at epoch {h['epoch']} (training collapsed): rolled back to the epoch-"
                      f"{h['rolled_back_to']} weights, learning rates halved from there" for h in r["history"] if "rolled_back_to" in h]
    lines += ["", "## Test figures"]
    if metrics:
        lines.append(f"On `{metrics['data']}` ({metrics['level']} level), commit `{metrics['commit']}`, {metrics['date']}, {metrics['machine']}:")
        lines.append(f"- entities (strict): {_micro(metrics['ner'])}; per type {_per_type(metrics['ner'])}")
        rel = metrics.get("relations")
        if rel:
            lines.append(f"- relations Rel+ end to end: {_micro(rel['strict'])}; per type {_per_type(rel['strict'])}")
            lines.append(f"- relations Rel+ from gold entities: {_micro(rel['gold_entities']['strict'])}")
    else:
        lines.append("Not evaluated yet: `python -m training evaluate --model RUN` adds them here.")
    cal = settings.get("calibration") or {}
    lines += ["", "## Calibration"]
    if cal:
        temps = ", ".join(f"{k} {v:.3f}" for k, v in cal.items() if k.endswith("temperature"))
        maps = ", ".join(k for k in SCORE_MAPS if k in cal) or "none"
        lines.append(f"Fitted on `{cal.get('fitted_on')}`: temperatures {temps}; score maps: {maps}. "
                     "A score of 0.9 means right about nine times in ten on data like that split.")
        thresholds = cal.get("thresholds") or {}
        floors = [f"{label} {t['min_score']:.2f}" for kind in ("entities", "relations") for label, t in (thresholds.get(kind) or {}).items()]
        if floors:
            lines.append(f"Per-type thresholds for precision {thresholds.get('target_precision')} (`min_score=\"run\"`): {', '.join(floors)}.")
        if metrics and "calibration" in metrics:
            c = metrics["calibration"]
            ece = f"entities {c['entity_ece']:.3f} (raw {c['uncalibrated']['entity_ece']:.3f})"
            if "relation_ece" in c:
                ece += f", relations {c['relation_ece']:.3f} (raw {c['uncalibrated']['relation_ece']:.3f})"
            lines.append(f"Expected calibration error on the test figures' data (15 bins): {ece}.")
    else:
        lines.append("None: scores are raw model probabilities.")
    lines += [
        "",
        "## Intended use",
        "Finding the people, organisations, places (and the relations between them that the types above name) in "
        "English news articles, to index, link or summarise them, with a person checking what matters; keep only "
        "confident output with `min_score`.",
        "",
        "## Limits",
        f"- Trained on `{train_file}` only (English news); other languages, genres (social media, science, "
        "law) and periods score lower, and types outside the label set are never found.",
        "- " + ("The encoder is uncased: case reaches the model only through the word-shape signal, so all-caps or "
                "all-lowercase text loses cues." if uncased else "The encoder is cased: all-caps or all-lowercase text loses cues."),
        "- Relations are looked for within a sentence (or `max_distance` characters) and only between entity-type "
        "pairs seen related in training; a relation whose entity is missed is missed too.",
        "- Scores are calibrated on the dev split; on other data they are optimistic.",
        "- The model repeats the biases of its training news; do not use it alone for decisions about people.",
        "",
    ]
    return "\n".join(lines)


def write_model_card(run_dir: Path, metrics: dict[str, Any] | None = None) -> Path:
    """Write RUN/MODEL_CARD.md from its extractor.json (and test metrics, if given)."""
    settings = json.loads((run_dir / SETTINGS_FILE).read_text(encoding="utf-8"))
    path = run_dir / CARD_FILE
    path.write_text(model_card(run_dir, settings, metrics), encoding="utf-8")
    return path
