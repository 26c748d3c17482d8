"""Prepare the git-ignored folders a lent GPU needs for the benchmarks/device_*.sh scripts.

A device call carries at most 64 MiB, the working tree included, and MPNet in fp16 is 219 MB: the
encoder travels in shards over several calls to the same warm machine, one folder per call.

  .whl/              wheels the GPU image lacks, at this environment's versions (call 1)
  .device/p1 ... pN  the corpus files (p1/data) and the encoder's fp16 shards and tokenizer
                     (pK/encoder/), packed so that call K, carrying pK, fits the limit

Each call should `ls .device` to see that the earlier parts are still there: a machine idle for
about 30 s goes back, and a fresh one starts bare. The last call runs the sweep, which links the
parts into .device/encoder and names any shard that did not arrive.

Usage: python benchmarks/device_prepare.py [--encoder mpnet] [--corpus conll2003 [raw_news/bbc ...]]
"""
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from importlib import metadata
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script from anywhere: import this checkout's packages

from inference.encoders import resolve_encoder  # noqa: E402
from training.corpora import shared_data_dir  # noqa: E402

CALL_LIMIT = 64 * 2**20  # bytes one call carries, working tree included
MARGIN = 2**20
# What the H200 image lacked on 2026-12-04 for this project (its transformers and hub are older;
# the hub at our version imports httpx2, httpcore2 and truststore), and the hub's other needs at
# our versions: that set ran there (plus hf_xet and pyyaml, left out: the image has them, and
# without their 5 MB the encoder fits four calls). seqeval ships no wheel.
WHEELS = ["transformers", "tokenizers", "huggingface_hub", "httpx2", "httpcore2", "truststore", "anyio", "h11",
          "idna", "click", "filelock", "packaging", "tqdm", "typing_extensions", "datasets", "dill", "multiprocess",
          "fsspec"]
BUILT_WHEELS = ["seqeval"]
PLATFORM = ["--python-version", "3.12", "--implementation", "cp", "--only-binary=:all:"] + [
    arg for tag in ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64") for arg in ("--platform", tag)]


def pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", "--disable-pip-version-check", *args], check=True)


def fetch_wheels(target: Path) -> None:
    """Wheels for the GPU image's Python (3.12), at the versions this environment runs."""
    shutil.rmtree(target, ignore_errors=True)
    def pins(names: list[str]) -> list[str]:
        return [f"{name}=={metadata.version(name)}" for name in names]

    pip("download", "--no-deps", *PLATFORM, "-d", str(target), *pins(WHEELS))
    pip("wheel", "--no-deps", "-w", str(target), *pins(BUILT_WHEELS))


def fp16_shards(encoder: str, target: Path) -> list[Path]:
    """The encoder as fp16 safetensors in shards of about 6 MB (fine grains pack the calls tightly),
    with its config and tokenizer files. Training loads it back in fp32 (train_ner.py), so only the
    rounding to fp16 differs."""
    import torch
    from transformers import AutoModel

    source = resolve_encoder(encoder)
    AutoModel.from_pretrained(source, dtype=torch.float16).save_pretrained(target, max_shard_size="6MB")
    for f in source.iterdir():
        if f.is_file() and (f.name.startswith(("tokenizer", "vocab", "special_tokens", "merges"))):
            shutil.copy(f, target / f.name)
    return sorted(target.iterdir())


def tree_bytes() -> int:
    """What travels with every call: tracked and untracked, not ignored files."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    return sum((REPO / f).stat().st_size for f in listed if f and (REPO / f).is_file())


def size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.is_dir() else path.stat().st_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--encoder", default="mpnet", help="minilm, mpnet or a model directory (default: mpnet)")
    parser.add_argument("--corpus", nargs="+", default=["conll2003"], help="folders under the data root to carry")
    parser.add_argument("--data-root", type=Path, default=None, help="default: $NEWS_DATA_DIR, else ../shared/data")
    args = parser.parse_args()

    wheels, device = REPO / ".whl", REPO / ".device"
    fetch_wheels(wheels)
    shutil.rmtree(device, ignore_errors=True)
    for corpus in args.corpus:
        shutil.copytree((args.data_root or shared_data_dir()) / corpus, device / "p1" / "data" / corpus)
    capacity = CALL_LIMIT - tree_bytes() - MARGIN
    loads = [size(wheels) + size(device / "p1")]
    if loads[0] > capacity:
        raise SystemExit(f"the wheels and corpora take {loads[0]} bytes, more than call 1 carries ({capacity}): carry fewer corpora")
    with tempfile.TemporaryDirectory() as tmp:
        for shard in sorted(fp16_shards(args.encoder, Path(tmp)), key=lambda f: -f.stat().st_size):
            bytes_ = shard.stat().st_size
            call = next((k for k, load in enumerate(loads) if load + bytes_ <= capacity), None)
            if call is None:
                if bytes_ > capacity:
                    raise SystemExit(f"{shard.name}: {bytes_} bytes, more than one call carries ({capacity})")
                call = len(loads)
                loads.append(0)
            loads[call] += bytes_
            (device / f"p{call + 1}" / "encoder").mkdir(parents=True, exist_ok=True)
            shutil.copy(shard, device / f"p{call + 1}" / "encoder" / shard.name)
    for k, load in enumerate(loads, start=1):
        carry = [".whl", ".device/p1"] if k == 1 else [f".device/p{k}"]
        print(f"call {k}: carry {carry}, {load / 1e6:.1f} MB of {capacity / 1e6:.1f}")


if __name__ == "__main__":
    main()
