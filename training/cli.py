"""`python -m training train|evaluate|calibrate`: fine-tune from a YAML config, evaluate a run,
refit its score calibration."""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
from pathlib import Path

from inference.calibration import SCORE_MAPS
from inference.cli import positive_int
from inference.encoders import EncoderNotFound
from inference.extractor import RunDirectoryError, read_settings
from inference.onnx_backend import BACKENDS

from .checkpoint import TrainingInterrupted, write_atomically
from .config import ConfigError, load_config
from .corpora import DataMissing, data_root
from .evaluate import evaluate_run, format_report, write_json
from .model_card import write_model_card
from .readers import ANNOTATED_FORMATS, ReaderError, read_documents


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    t = commands.add_parser("train", help="fine-tune a model from a YAML config and write a run directory")
    t.add_argument("--config", required=True, type=Path, help="configs/NAME.yaml")
    t.add_argument("--output", type=Path, help="run directory (default: the config's output, else runs/NAME)")
    t.add_argument("--data-root", help="folder holding the corpora (default: $NEWS_DATA_DIR, else the config's data.root)")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value, e.g. ner.epochs=3")
    t.add_argument("--resume", action="store_true",
                   help="continue an interrupted run from its latest checkpoint (OUTPUT.checkpoints/), same config and --set")

    e = commands.add_parser("evaluate", help="score a run on annotated data (default: its config's test split)")
    e.add_argument("--model", required=True, type=Path, help="run directory")
    e.add_argument("--data", type=Path, help="corpus file (default: the test split the run was configured with)")
    e.add_argument("--format", choices=ANNOTATED_FORMATS, help="format of --data (default: the run's)")
    e.add_argument("--level", choices=["sentence", "article", "both"], default="both",
                   help="feed sentences, whole articles, or both (article level needs multi-sentence documents)")
    e.add_argument("--label-map", metavar="FROM=TO,...",
                   help="score on a corpus with other labels, e.g. Peop=PER,Org=ORG,Loc=LOC (unmapped labels are left out)")
    e.add_argument("--out", type=Path, help="metrics JSON (default: RUN/metrics.json)")
    e.add_argument("--plots", type=Path, metavar="DIR", help="write reliability diagrams (PNG) into DIR")
    e.add_argument("--report", type=Path, metavar="DIR",
                   help="write an HTML and markdown report (tables, confusion matrix, plots, error examples) into DIR")
    e.add_argument("--batch-size", type=positive_int, default=32, help="texts (windows) per model call")
    e.add_argument("--backend", choices=BACKENDS, default="torch", help="encoder forward on torch or ONNX Runtime (python -m inference export-onnx)")
    e.add_argument("--onnx-dir", type=Path, help="folder of the exported graphs (default: RUN/onnx)")

    c = commands.add_parser("calibrate", help="fit a run's score calibration (default: on its dev split; a refit run "
                                              "copies its reference run's again, as dev is its training data)")
    c.add_argument("--model", required=True, type=Path, help="run directory")
    c.add_argument("--data", type=Path, help="corpus file (default: the dev split the run was configured with)")
    c.add_argument("--format", choices=ANNOTATED_FORMATS, help="format of --data (default: the run's)")
    c.add_argument("--target-precision", type=float, metavar="P",
                   help="per-type thresholds reach this dev precision (default: the run's config, else 0.9)")

    n = commands.add_parser("ensemble", help="combine trained runs (seeds of one config) into an ensemble run, calibrated on dev")
    n.add_argument("--members", required=True, type=Path, nargs="+", metavar="RUN", help="run directories (two or more)")
    n.add_argument("--output", required=True, type=Path, help="ensemble run directory (holds settings only; members stay where they are)")
    n.add_argument("--target-precision", type=float, metavar="P",
                   help="per-type thresholds reach this dev precision (default: the first member's config, else 0.9)")
    n.add_argument("--refit-of", type=Path, metavar="ENSEMBLE",
                   help="members that are refit runs (trained on train + dev) take the calibration of this ensemble of their "
                        "reference runs, since dev cannot calibrate them")

    args = parser.parse_args(argv)
    commands = {"train": train_command, "evaluate": evaluate_command, "calibrate": calibrate_command, "ensemble": ensemble_command}
    command = commands[args.command]
    try:
        return command(args)
    except (ConfigError, DataMissing, ReaderError, EncoderNotFound, RunDirectoryError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except TrainingInterrupted as err:
        print(f"error: {err}; continue with --resume", file=sys.stderr)
        return 3


def train_command(args: argparse.Namespace) -> int:
    from .train import train  # heavy imports only when training

    config = load_config(args.config, args.set)
    config = data_root(config, args.data_root)
    if args.output:
        config = dataclasses.replace(config, output=str(args.output))
    output = train(config, resume=args.resume)
    print(f"run written to {output}")
    return 0


def run_data(args: argparse.Namespace, split: str, configured: bool = False) -> tuple[Path, str, list]:
    """--data/--format (unless `configured`), else the run's configured split: (path, format, documents)."""
    data_config = read_settings(args.model)["config"]["data"]
    data = (not configured and args.data) or Path(data_config["root"]) / data_config[split]
    data_format = (not configured and args.format) or data_config["format"]
    return data, data_format, read_documents(data, data_format)


def calibrate_command(args: argparse.Namespace) -> int:
    from inference.extractor import MENTIONS_FILE, SETTINGS_FILE, NewsExtractor, known_mentions_json

    from .calibrate import fit_calibration
    from .refit import reused_calibration
    from .train import known_mentions

    data, _, documents = run_data(args, "dev")
    extractor = NewsExtractor.from_pretrained(args.model, calibrated=False)
    target = args.target_precision or extractor.settings["config"].get("calibration", {}).get("target_precision", 0.9)
    if not 0.0 < target <= 1.0:
        raise ValueError(f"--target-precision must lie in (0, 1], got {target}")
    if not extractor.known_mentions:  # a run written before known_mentions.json existed
        extractor.known_mentions = known_mentions(run_data(args, "train", configured=True)[2])
        write_atomically(args.model / MENTIONS_FILE, known_mentions_json(extractor.known_mentions))
    refit = extractor.settings["config"].get("refit")
    if refit and args.data is None:  # dev is training data of a refit: take the reference's, as training did
        fitted, data = reused_calibration(refit, read_settings(Path(refit))), f"{refit} (copied)"
    else:
        fitted = {**fit_calibration(extractor, documents, target), "fitted_on": str(data)}  # whole documents, as in training
    write_atomically(args.model / SETTINGS_FILE, json.dumps({**extractor.settings, "calibration": fitted}, indent=2) + "\n")
    write_model_card(args.model)  # new calibration; test figures return with the next evaluate
    temperatures = ", ".join(f"{k} {v:.3f}" for k, v in fitted.items() if k.endswith("temperature"))
    print(f"calibration fitted on {data}: {temperatures}; score maps for "
          + " and ".join(k.split("_")[0] for k in SCORE_MAPS if k in fitted))
    for kind, d in fitted["decision"].items():
        print(f"  default output, {kind}: scores from {d['min_score']:.2f} kept (dev F1 {d['f1']:.3f}, {d['f1_keeping_all']:.3f} keeping all)")
    for kind in ("entities", "relations"):
        for label, t in fitted["thresholds"][kind].items():
            status = "" if t["reached"] else f" (target {target} not reached)"
            print(f"  {label:<14} min_score {t['min_score']:.3f}: dev precision {t['precision']:.3f}, recall {t['recall']:.3f}{status}")
    return 0


def ensemble_command(args: argparse.Namespace) -> int:
    """An ensemble run: the first member's settings, the members (relative paths), then a
    calibration fitted for the ensemble on the dev split, as `calibrate` does for a run."""
    from inference.extractor import MENTIONS_FILE, SETTINGS_FILE
    from inference.ensemble import mismatched_settings

    if len(args.members) < 2:
        raise ValueError("--members: an ensemble needs two or more runs")
    first = read_settings(args.members[0])
    for member in args.members:
        if member.resolve() == args.output.resolve():
            raise ValueError(f"--output {args.output} is one of the members")
        if read_settings(member).get("members"):
            raise RunDirectoryError(f"{member} is itself an ensemble: list its members instead")
        differing = mismatched_settings(first, read_settings(member))
        if differing:
            raise RunDirectoryError(f"{member} differs from {args.members[0]} in {', '.join(differing)}: not members of one ensemble")
    refit = refit_reference(args.members, args.refit_of)
    args.output.mkdir(parents=True, exist_ok=True)
    members = [os.path.relpath(m.resolve(), args.output.resolve()) for m in args.members]
    settings = {k: v for k, v in first.items() if k not in ("training", "calibration")} | {"members": members}
    settings["config"] = {**settings["config"], "refit": refit}
    write_atomically(args.output / SETTINGS_FILE, json.dumps(settings, indent=2) + "\n")
    if (args.members[0] / MENTIONS_FILE).is_file():
        write_atomically(args.output / MENTIONS_FILE, (args.members[0] / MENTIONS_FILE).read_text(encoding="utf-8"))
    print(f"ensemble of {len(members)} runs written to {args.output}; fitting its calibration")
    return calibrate_command(argparse.Namespace(model=args.output, data=None, format=None, target_precision=args.target_precision))


def refit_reference(members: list[Path], refit_of: Path | None) -> str | None:
    """The ensemble whose calibration an ensemble of refit runs copies (`--refit-of`), checked to
    be the ensemble of exactly their reference runs; None for members trained on train alone."""
    from inference.ensemble import member_dirs

    references = [read_settings(m)["config"].get("refit") for m in members]
    if not any(references):
        if refit_of is not None:
            raise ValueError("--refit-of: the members are not refit runs; their ensemble is calibrated on dev")
        return None
    if not all(references):
        raise ValueError("--members: some are refit runs (trained on train + dev) and some not; an ensemble needs one kind")
    if refit_of is None:
        raise ValueError("--members are refit runs, trained on dev, which can no longer calibrate them: name the ensemble "
                         "of their reference runs with --refit-of, whose calibration this ensemble takes")
    theirs = read_settings(refit_of)
    if not theirs.get("members") or "calibration" not in theirs:
        raise RunDirectoryError(f"--refit-of {refit_of}: not a calibrated ensemble run")
    if sorted(map(str, member_dirs(refit_of, theirs))) != sorted(str(Path(r).resolve()) for r in references):
        raise ValueError(f"--refit-of {refit_of}: its members are not the members' reference runs ({', '.join(references)})")
    return str(refit_of)


def evaluate_command(args: argparse.Namespace) -> int:
    data, data_format, documents = run_data(args, "test")
    multi = any(len(d.sentences) > 1 for d in documents)
    levels = {"sentence": ["sentence"], "article": ["article"], "both": ["sentence", "article"] if multi else ["sentence"]}[args.level]
    label_map = None
    if args.label_map:
        pairs = [item.partition("=") for item in args.label_map.split(",")]
        if any(not a or not sep or not b for a, sep, b in pairs):
            raise ValueError(f"--label-map {args.label_map!r}: expected FROM=TO pairs separated by commas")
        label_map = {a.strip(): b.strip() for a, _, b in pairs}
    metrics = evaluate_run(
        args.model, data, data_format, documents, levels, args.batch_size, label_map, args.plots, args.report,
        args.backend, args.onnx_dir,
    )
    for level, result in (metrics.get("levels") or {metrics["level"]: metrics}).items():
        print(format_report(result, f"{level} level, {data}"), end="\n\n")
    out = args.out or args.model / "metrics.json"
    write_json(metrics, out)
    print(f"metrics written to {out}")
    if args.out is None and args.data is None and label_map is None:  # the run's own metrics: its model card gets them
        print(f"model card refreshed: {write_model_card(args.model, metrics)}")
    if args.report:
        print(f"report written to {args.report}")
    return 0
