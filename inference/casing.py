"""A casing signal for uncased encoders: each token's word shape, embedded and added to its input.

MiniLM and MPNet lower-case their input, yet capitals are strong evidence of a name. Each
token gets the shape of its word (other, lower, Title, UPPER, mIxed), fed to the model as
`token_type_ids`. How the encoder embeds it depends on what the encoder has:

- BERT-like encoders (MiniLM) have a token-type embedding table: it grows from 2 rows to one per
  shape, each new row a copy of the pretrained row 0, so training starts from the unchanged
  encoder. The saved model is a standard one (`type_vocab_size` = number of shapes).
- Encoders without one (MPNet) get a shape table of their own, zero-initialised (again the
  unchanged encoder at the start), inside their word-embedding module (`ShapedWordEmbedding`):
  a pre-hook on the model takes `token_type_ids` out of the call and hands it to that module.
  The table is saved beside the model as `shapes.safetensors` (`save_encoder`) and re-attached
  by `load_shape_table`, so `model.safetensors` stays a standard checkpoint.

Either way `transformers.pipeline` still loads the saved model, though without shapes it sees
every token as "other" (BERT-like) or as shapeless (others).
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import PreTrainedModel

SHAPES = ("other", "lower", "title", "upper", "mixed")
SHAPES_FILE = "shapes.safetensors"


@functools.lru_cache(maxsize=1 << 16)
def word_shape(word: str) -> int:
    """Index into SHAPES of a word's letter case (cached: news words repeat, and this per-word
    Python was a third of the CPU time outside the encoders in a 200-article profile)."""
    letters = [c for c in word if c.isalpha()]
    if not letters or not any(c.isupper() or c.islower() for c in letters):
        return 0  # no cased letters: digits, punctuation, Arabic, CJK
    if all(c.islower() for c in letters if c.isupper() or c.islower()):
        return 1
    if all(c.isupper() for c in letters if c.isupper() or c.islower()):
        return 3 if len(letters) > 1 else 2
    cased = [c for c in letters if c.isupper() or c.islower()]
    return 2 if cased[0].isupper() and all(c.islower() for c in cased[1:]) else 4


class ShapedWordEmbedding(torch.nn.Embedding):
    """Word embeddings plus a word-shape embedding, for encoders without token-type embeddings.

    The shapes of the next call arrive through `pending` (set by `_take_shapes` from the model's
    `token_type_ids`) and are used once; a call without them counts every token as "other".
    One model serves one call at a time (the server's micro-batcher makes sure of it)."""

    def __init__(self, words: torch.nn.Embedding) -> None:
        super().__init__(words.num_embeddings, words.embedding_dim, padding_idx=words.padding_idx)
        self.weight = words.weight
        self.shapes = torch.nn.Embedding(len(SHAPES), words.embedding_dim)
        torch.nn.init.zeros_(self.shapes.weight)
        self.pending: torch.Tensor | None = None

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        shapes, self.pending = self.pending, None
        if shapes is None:
            shapes = torch.zeros_like(input_ids)
        return super().forward(input_ids) + self.shapes(shapes)


def _take_shapes(module: torch.nn.Module, args: tuple, kwargs: dict[str, Any]) -> tuple[tuple, dict[str, Any]]:
    """Forward pre-hook: move `token_type_ids` from the call to the shaped word embeddings."""
    shapes = kwargs.pop("token_type_ids", None)
    if shapes is not None:
        module.get_input_embeddings().pending = shapes
    return args, kwargs


def _shape_table(model: PreTrainedModel) -> torch.nn.Embedding | None:
    words = model.get_input_embeddings()
    return words.shapes if isinstance(words, ShapedWordEmbedding) else None


def shape_parameters(model: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The weights that embed word shapes anywhere in `model` (a token-type table grown to one row
    per shape, or a shape table of its own), for an optimizer group with its own learning rate."""
    found = {}
    for module in model.modules():
        if isinstance(module, ShapedWordEmbedding):
            found[id(module.shapes.weight)] = module.shapes.weight
        table = getattr(module, "token_type_embeddings", None)
        if isinstance(table, torch.nn.Embedding) and table.num_embeddings == len(SHAPES):
            found[id(table.weight)] = table.weight
    return list(found.values())


def enable_shape_embeddings(model: PreTrainedModel) -> None:
    """Give the model's encoder a shape signal fed by `token_type_ids` (see the module docstring);
    a model that already has one is left as it is."""
    embeddings = getattr(model.base_model, "embeddings", None)
    old = getattr(embeddings, "token_type_embeddings", None)
    if old is None:
        _attach_shape_table(model)
        return
    if old.num_embeddings == len(SHAPES):
        return  # already carries shapes: the encoder is a model trained here
    new = torch.nn.Embedding(len(SHAPES), old.embedding_dim)
    with torch.no_grad():
        new.weight.copy_(old.weight[0].expand(len(SHAPES), -1))
    embeddings.token_type_embeddings = new
    model.config.type_vocab_size = len(SHAPES)
    # BERT keeps a zero token_type_ids buffer sized by max positions: still valid (shape 0 = other).


def _attach_shape_table(model: PreTrainedModel) -> None:
    if _shape_table(model) is None:
        model.base_model.set_input_embeddings(ShapedWordEmbedding(model.get_input_embeddings()))
    # On the model called and on its encoder, which may be called alone (a copy serving relations).
    for module in {id(m): m for m in (model, model.base_model)}.values():
        if _take_shapes not in module._forward_pre_hooks.values():
            module.register_forward_pre_hook(_take_shapes, with_kwargs=True)


def save_encoder(model: PreTrainedModel, directory: Path) -> None:
    """`save_pretrained` (safetensors); a shape table of its own goes to SHAPES_FILE beside it."""
    table = _shape_table(model)
    if table is None:
        model.save_pretrained(directory, safe_serialization=True)
        return
    prefix = next(name for name, module in model.named_modules() if module is table)
    state = {k: v for k, v in model.state_dict().items() if not k.startswith(prefix + ".")}
    model.save_pretrained(directory, state_dict=state, safe_serialization=True)
    save_file({"weight": table.weight.detach().contiguous()}, str(Path(directory) / SHAPES_FILE))


def load_shape_table(model: PreTrainedModel, directory: Path) -> PreTrainedModel:
    """Re-attach the shape table saved by `save_encoder`, if the directory holds one."""
    path = Path(directory) / SHAPES_FILE
    if path.is_file():
        _attach_shape_table(model)
        _shape_table(model).load_state_dict(load_file(str(path)))
    return model
