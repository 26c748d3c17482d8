"""Time one million-character article through a run (BENCHMARKS.md, "Bad input").

Usage: OMP_NUM_THREADS=1 python benchmarks/long_article.py RUN_DIR
The article repeats one sentence and ends with a known one; prints the time, the entity count
and what was found in the last 60 characters; offsets are checked.
"""
from __future__ import annotations

import sys
import time

from inference import NewsExtractor

FILLER = "The committee said on Tuesday that the weather was fine and the talks would go on. "
KNOWN = "John Smith works for Acme Corp in Boston."
LENGTH = 1_000_000


def main(run_dir: str) -> None:
    extractor = NewsExtractor.from_pretrained(run_dir)
    text = (FILLER * (LENGTH // len(FILLER) + 1))[: LENGTH - len(KNOWN) - 1] + " " + KNOWN
    started = time.perf_counter()
    article = extractor.extract(text)
    seconds = time.perf_counter() - started
    assert all(text[e.start : e.end] == e.text for e in article.entities), "offsets must be exact"
    at_end = [(e.text, e.label) for e in article.entities if e.start > LENGTH - 60]
    print(f"{run_dir}: {len(text)} characters, {seconds:.1f} s, {len(article.entities)} entities, "
          f"{len(article.relations)} relations; at the end: {at_end}")


if __name__ == "__main__":
    main(sys.argv[1])
