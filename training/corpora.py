"""Loading a config's corpus splits, with a helpful stop where the data is missing."""
from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path

from inference.schema import Document

from .config import Config, DataConfig
from .readers import read_documents

# Where a user outside this team gets each corpus (format name -> corpus, publisher).
PUBLISHED = {
    "conll2003": ("CoNLL-2003 English NER", "https://www.clips.uantwerpen.be/conll2003/ner/ (needs the Reuters RCV1 corpus)"),
    "spert": ("CoNLL04 (SpERT split)", "https://github.com/lavis-nlp/spert (scripts/fetch_datasets.sh)"),
    "crossre": ("CrossRE news domain", "https://github.com/mainlp/CrossRE (crossre_data/news-*.json)"),
    "jsonl": ("your own JSONL corpus", "the project's JSONL format (README, 'Data formats')"),
}


class DataMissing(FileNotFoundError):
    """A corpus file is absent; the message names the corpus, its publisher and the setting to change."""


def shared_data_dir() -> Path:
    """The corpora folder for tools without a config (benchmarks, the notebook): $NEWS_DATA_DIR,
    else the shared data folder beside this checkout (../shared/data, the configs' data.root)."""
    return Path(os.environ.get("NEWS_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")


def data_root(config: Config, flag: str | None = None) -> Config:
    """The config with its data root taken from the --data-root flag, else $NEWS_DATA_DIR, else
    the config itself; every other setting kept."""
    root = flag or os.environ.get("NEWS_DATA_DIR") or config.data.root
    return dataclasses.replace(config, data=dataclasses.replace(config.data, root=root))


def check_data(config: DataConfig) -> None:
    """Stop with one clear message if any split file is missing."""
    missing = [str(config.path(s)) for s in ("train", "dev", "test") if not config.path(s).is_file()]
    if missing:
        corpus, where = PUBLISHED[config.format]
        raise DataMissing(
            f"{corpus} not found: missing {', '.join(missing)}.\n"
            f"  It is published at {where}.\n"
            f"  Point at a local copy with --data-root DIR (or NEWS_DATA_DIR=DIR, or the config key data.root); "
            f"the split files are the config keys data.train, data.dev and data.test, read under the root."
        )


def load_split(config: DataConfig, split: str) -> list[Document]:
    """Documents of one split ('train', 'dev' or 'test')."""
    return read_documents(config.path(split), config.format)


def digest(path: Path) -> str:
    """sha256 of a data file, recorded in the run so that its provenance is checkable."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
