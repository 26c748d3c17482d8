"""News information extraction at run time: `from inference import NewsExtractor`.

Names are imported lazily so that light users of the schema (the corpus readers) do not pay
for importing torch and transformers.
"""
from typing import Any

from .schema import Article, Document, Entity, Relation

__all__ = ["Article", "Document", "Entity", "NewsExtractor", "Relation", "RunDirectoryError"]


def __getattr__(name: str) -> Any:
    if name in ("NewsExtractor", "RunDirectoryError"):
        from . import extractor

        return getattr(extractor, name)
    raise AttributeError(f"module 'inference' has no attribute {name!r}")
