"""Every result file that BENCHMARKS.md or README.md names is committed under benchmarks/results/.

A figure whose JSON is missing cannot be checked, and the CPU runs behind them are hours long:
this catches a result copied into the folder but never added to git (as happened once).
"""

import itertools
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
# Backticked .json names that are files of a run directory, not committed results.
NOT_RESULTS = {"RUN/metrics.json", "extractor.json", "known_mentions.json", "*_tokens.json"}


def _expand(name: str) -> list[str]:
    """`a_{x,y}_seed{13,14}.json` -> its four names; `seedN` and `*` become glob wildcards."""
    parts = re.split(r"\{([^{}]*)\}", name)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c).replace("seedN", "seed*") for c in itertools.product(*choices)]


def _cited_names() -> set[str]:
    text = "".join((ROOT / f).read_text(encoding="utf-8") for f in ("BENCHMARKS.md", "README.md"))
    return set(re.findall(r"`([^`\s]+\.json)`", text)) - NOT_RESULTS


def _committed(pattern: str) -> bool:
    # Files are cited with their folder or, after it was named once, without: match by file name.
    return any(RESULTS.rglob(Path(pattern).name))


def test_expand_spells_out_braces_and_seed_wildcards():
    assert _expand("a_{x,y}_seed{13,14}.json") == [
        "a_x_seed13.json", "a_x_seed14.json", "a_y_seed13.json", "a_y_seed14.json"]
    assert _expand("conll04-cpu/refit_context_seedN.json") == ["conll04-cpu/refit_context_seed*.json"]


def test_every_cited_result_file_exists():
    names = _cited_names()
    assert len(names) > 50, "the citation pattern no longer finds BENCHMARKS.md's result files"
    missing = [p for n in sorted(names) for p in _expand(n) if not _committed(p)]
    assert not missing, f"named in BENCHMARKS.md/README.md but not under benchmarks/results/: {missing}"
