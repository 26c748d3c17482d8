"""The one record schema of the project: documents with character offsets.

Readers produce `Document`s (gold annotations), training encodes them, evaluation compares
them with what `NewsExtractor` returns (`Article`s of `Entity` and `Relation`). Every offset is
a character offset into the document's text, end exclusive, so `text[start:end]` is the mention.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Span:
    """A gold entity mention: `text[start:end]` has type `label`."""

    start: int
    end: int
    label: str


@dataclass(frozen=True)
class RelationMention:
    """A gold relation between two entities, given as indices into `Document.entities`."""

    head: int
    tail: int
    label: str


@dataclass
class Document:
    """An annotated text: one sentence or a whole article.

    `sentences` and `tokens` are character spans; `tokens` holds the corpus' own tokenization
    (empty for raw text) so that evaluation can score on the corpus' words.
    """

    id: str
    text: str
    entities: list[Span] = field(default_factory=list)
    relations: list[RelationMention] = field(default_factory=list)
    sentences: list[tuple[int, int]] = field(default_factory=list)
    tokens: list[tuple[int, int]] = field(default_factory=list)

    def __post_init__(self) -> None:
        n = len(self.text)
        for span in self.entities:
            if not 0 <= span.start < span.end <= n:
                raise ValueError(f"document {self.id!r}: entity {span} lies outside the text (length {n})")
        for rel in self.relations:
            if not (0 <= rel.head < len(self.entities) and 0 <= rel.tail < len(self.entities)):
                raise ValueError(f"document {self.id!r}: relation {rel} points to a missing entity")

    def sentence_documents(self) -> list[Document]:
        """Split into one document per sentence, offsets rebased; relations across sentences are dropped."""
        if not self.sentences:
            return [self]
        out = []
        for k, (s, e) in enumerate(self.sentences):
            keep = [i for i, span in enumerate(self.entities) if s <= span.start and span.end <= e]
            index = {old: new for new, old in enumerate(keep)}
            out.append(
                Document(
                    id=f"{self.id}#s{k}",
                    text=self.text[s:e],
                    entities=[Span(self.entities[i].start - s, self.entities[i].end - s, self.entities[i].label) for i in keep],
                    relations=[
                        RelationMention(index[r.head], index[r.tail], r.label)
                        for r in self.relations
                        if r.head in index and r.tail in index
                    ],
                    sentences=[(0, e - s)],
                    tokens=[(ts - s, te - s) for ts, te in self.tokens if s <= ts and te <= e],
                )
            )
        return out


@dataclass
class Entity:
    """A predicted entity mention; `text == source[start:end]`, `score` in [0, 1]."""

    id: str
    start: int
    end: int
    text: str
    label: str
    score: float


@dataclass
class Relation:
    """A predicted relation; `head` and `tail` are `Entity.id`s of the same article."""

    head: str
    tail: str
    label: str
    score: float


def sentence_documents(documents: list[Document]) -> list[Document]:
    """Every sentence of every document as a document of its own (see Document.sentence_documents)."""
    return [s for d in documents for s in d.sentence_documents()]


def label_spans(mentions: list[Span] | list[Entity]) -> list[tuple[int, int, str]]:
    """(start, end, label) of gold or predicted entity mentions: the form spans are compared in."""
    return [(m.start, m.end, m.label) for m in mentions]


@dataclass
class Article:
    """What `NewsExtractor.extract` returns for one text."""

    id: str
    text: str
    entities: list[Entity] = field(default_factory=list)
    relations: list[Relation] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The prediction JSON of docs/ARCHITECTURE.md (the text itself is left out)."""
        return {
            "id": self.id,
            "entities": [asdict(e) for e in self.entities],
            "relations": [asdict(r) for r in self.relations],
        }
