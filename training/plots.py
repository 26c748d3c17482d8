"""Plots a person would rather look at than read: the reliability diagram of a run's scores."""
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
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
