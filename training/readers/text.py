"""Plain-text articles without annotations: a `.txt` file, or a folder of them (one article per
file, read recursively in name order), e.g. the BBC News corpus. Only where no labels are needed:
texts that a teacher labels for distillation (`ner.distill.unlabeled`)."""
from __future__ import annotations

import sys
from pathlib import Path

from inference.schema import Document
from inference.sentences import split_sentences
from training.readers import ReaderError, read_text


def read(path: Path) -> list[Document]:
    """One `Document` per file, ids relative to `path`, sentences from `inference.sentences`.

    A named file must be UTF-8; in a folder, a file that is not is left out with a warning that
    names it (one BBC article of 2,225 is Latin-1), and a folder with nothing readable is an error."""
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if not path.is_dir():
        text = read_text(path)
        return [Document(id=path.name, text=text, sentences=split_sentences(text))]
    documents, skipped = [], []
    for file in sorted(f for f in path.rglob("*.txt") if f.is_file()):
        try:
            text = read_text(file)
        except ReaderError as err:
            skipped.append(str(err))
            continue
        documents.append(Document(id=file.relative_to(path).as_posix(), text=text, sentences=split_sentences(text)))
    for reason in skipped:
        print(f"warning: {reason}: file left out", file=sys.stderr)
    if not documents:
        raise ValueError(f"{path}: a folder without readable .txt files")
    return documents
