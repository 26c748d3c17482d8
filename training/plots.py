"""Plots a person would rather look at than read: reliability diagram, F1 per type, precision and
recall by score threshold (matplotlib, files only)."""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from inference.calibration import calibration_bins  # noqa: E402

BINS = 15


def reliability_diagram(curves: dict[str, tuple[list[float], list[bool]]], path: Path, title: str) -> None:
    """Accuracy against mean score in 15 equal-width bins, one line per (name -> scores, correct)."""
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfect calibration")
    for name, (scores, correct) in curves.items():
        points = calibration_bins(scores, correct, BINS)
        ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=f"{name} ({len(scores)})")
    ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="score (mean in bin)", ylabel="share exactly right", title=title)
    ax.legend(loc="upper left", fontsize=8)
    _save(fig, path)


def f1_bars(tables: dict[str, dict[str, dict[str, float]]], path: Path, title: str) -> None:
    """Horizontal F1 bars per type, one panel per table (name -> per-type rows with an "f1")."""
    fig, axes = plt.subplots(1, len(tables), figsize=(4.5 * len(tables), 0.4 * max(len(t) for t in tables.values()) + 1.6),
                             squeeze=False)
    for ax, (name, rows) in zip(axes[0], tables.items()):
        types = sorted(rows)
        values = [rows[t]["f1"] for t in types]
        ax.barh(types, values, color="#4c78a8")
        for y, v in enumerate(values):
            ax.text(min(v + 0.02, 0.9), y, f"{v:.2f}", va="center", fontsize=8)
        ax.set(xlim=(0, 1), xlabel="F1", title=name)
        ax.invert_yaxis()
    fig.suptitle(title)
    _save(fig, path)


def threshold_curves(tables: dict[str, list[dict[str, float]]], path: Path, title: str) -> None:
    """Precision, recall and share kept against the score threshold, one panel per table
    (name -> the risk-coverage rows of training.evaluate)."""
    fig, axes = plt.subplots(1, len(tables), figsize=(4.5 * len(tables), 3.8), squeeze=False)
    for ax, (name, rows) in zip(axes[0], tables.items()):
        thresholds = [r["threshold"] for r in rows]
        for key, style in (("precision", "-o"), ("recall", "-s"), ("kept", ":")):
            ax.plot(thresholds, [r[key] for r in rows], style, label=key, markersize=4)
        ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="min_score", title=name)
        ax.legend(loc="lower left", fontsize=8)
    fig.suptitle(title)
    _save(fig, path)


def _save(fig: plt.Figure, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
