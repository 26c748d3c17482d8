"""A casing signal for uncased encoders, carried in the token-type (segment) embeddings.

MiniLM and MPNet lower-case their input, yet capitals are strong evidence of a name. Each
token gets the shape of its word (other, lower, Title, UPPER, mIxed) as its token-type id;
the encoder's token-type embedding table grows from 2 rows to one per shape, each new row a
copy of the pretrained row 0, so training starts from the unchanged encoder. The saved model
is a standard one (`type_vocab_size` = number of shapes): `transformers.pipeline` still loads
it, though without shapes it sees every token as "other".
"""
from __future__ import annotations

import torch
from transformers import PreTrainedModel

SHAPES = ("other", "lower", "title", "upper", "mixed")


def word_shape(word: str) -> int:
    """Index into SHAPES of a word's letter case."""
    letters = [c for c in word if c.isalpha()]
    if not letters or not any(c.isupper() or c.islower() for c in letters):
        return 0  # no cased letters: digits, punctuation, Arabic, CJK
    if all(c.islower() for c in letters if c.isupper() or c.islower()):
        return 1
    if all(c.isupper() for c in letters if c.isupper() or c.islower()):
        return 3 if len(letters) > 1 else 2
    cased = [c for c in letters if c.isupper() or c.islower()]
    return 2 if cased[0].isupper() and all(c.islower() for c in cased[1:]) else 4


def enable_shape_embeddings(model: PreTrainedModel) -> None:
    """Grow the encoder's token-type embeddings to one row per shape, each a copy of row 0."""
    embeddings = getattr(model.base_model, "embeddings", None)
    old = getattr(embeddings, "token_type_embeddings", None)
    if old is None:
        raise ValueError(
            f"{type(model.base_model).__name__} has no token-type embeddings to carry word shapes: set ner.casing: false"
        )
    if old.num_embeddings == len(SHAPES):
        return  # already carries shapes: the encoder is a model trained here
    new = torch.nn.Embedding(len(SHAPES), old.embedding_dim)
    with torch.no_grad():
        new.weight.copy_(old.weight[0].expand(len(SHAPES), -1))
    embeddings.token_type_embeddings = new
    model.config.type_vocab_size = len(SHAPES)
    # BERT keeps a zero token_type_ids buffer sized by max positions: still valid (shape 0 = other).
