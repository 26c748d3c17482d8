"""Training checkpoints: what it takes to continue a fine-tuning run bit for bit after a crash.

Checkpoints of a run `runs/NAME` live in `runs/NAME.checkpoints/STAGE/` (STAGE: `ner`,
`relations`), one folder per checkpoint:

    model.safetensors      the weights being trained
    best.safetensors       the weights of the best epoch so far (absent before the first dev score)
    optimizer.safetensors  AdamW's per-parameter tensors
    state.json             loop position (epoch, batches of it done, step), dev history, best
                           score, patience count, seconds spent, the optimizer's param groups,
                           the scheduler, the sampler's generator state at the start of the
                           epoch, the RNG states (python, numpy, torch, cuda) and a fingerprint
                           of the config and data

No pickle anywhere: tensors in safetensors, the rest JSON. A checkpoint folder is written under
a hidden `.partial` name and renamed; `latest.json` is then replaced atomically to point at it,
so a crash while saving leaves the previous checkpoint in force. The main process writes;
multi-process runs restore the main process's RNG states on every process.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file

STOP_AFTER_ENV = "NEWS_EXTRACT_STOP_AFTER_STEPS"  # test hook: raise after this many optimizer steps
LATEST = "latest.json"


def write_atomically(path: Path, content: str | bytes) -> None:
    """The old file or the new one, never half of one: write a hidden sibling, then rename."""
    staging = path.with_name(f".{path.name}.partial")
    if isinstance(content, bytes):
        staging.write_bytes(content)
    else:
        staging.write_text(content, encoding="utf-8")
    staging.replace(path)


class TrainingInterrupted(RuntimeError):
    """Raised by the NEWS_EXTRACT_STOP_AFTER_STEPS test hook, standing in for a killed process."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed from; the message says which and why."""


@dataclass
class LoopState:
    """Where the fine-tuning loop of one model stands (training/loop.py)."""

    epoch: int = 1  # the epoch under way (or next to start)
    batches: int = 0  # batches of that epoch already trained on
    step: int = 0  # optimizer steps so far
    history: list[dict[str, float]] = field(default_factory=list)
    best: float = -1.0
    stale: int = 0  # epochs since the best dev score
    seconds: float = 0.0  # training time before this process
    done: bool = False  # training of this model has ended (its best weights are loaded)
    epoch_sampler_state: str = ""  # the sampler generator's state when `epoch` began (base64)


def fingerprint(*parts: Any) -> str:
    """A digest of JSON-able values (config and data digests): a checkpoint resumes only the run it belongs to."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def encode_bytes(t: torch.Tensor) -> str:
    """A uint8 state tensor (generator states) as base64 text."""
    return base64.b64encode(t.numpy().tobytes()).decode("ascii")


def decode_bytes(s: str) -> torch.Tensor:
    return torch.frombuffer(bytearray(base64.b64decode(s)), dtype=torch.uint8).clone()


def rng_states() -> dict[str, Any]:
    """The python, numpy, torch and cuda RNG states, as JSON."""
    version, mt, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": [version, list(mt), gauss],
        "numpy": [kind, keys.tolist(), pos, has_gauss, cached],
        "torch": encode_bytes(torch.get_rng_state()),
        "cuda": [encode_bytes(s) for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
    }


def set_rng_states(states: dict[str, Any]) -> None:
    """Restore what `rng_states` recorded."""
    version, mt, gauss = states["python"]
    random.setstate((version, tuple(mt), gauss))
    kind, keys, pos, has_gauss, cached = states["numpy"]
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(decode_bytes(states["torch"]))
    if states["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([decode_bytes(s) for s in states["cuda"]])


def _optimizer_parts(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimizer state dict into tensors (safetensors) and everything else (JSON)."""
    tensors, scalars = {}, {}
    for index, values in state_dict["state"].items():
        for name, value in values.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{index}/{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}/{name}"] = value
    return tensors, {"param_groups": state_dict["param_groups"], "scalars": scalars}


def _optimizer_state(tensors: dict[str, torch.Tensor], rest: dict[str, Any]) -> dict[str, Any]:
    """Join what `_optimizer_parts` split."""
    state: dict[int, dict[str, Any]] = {}
    for key, value in [*tensors.items(), *rest["scalars"].items()]:
        index, name = key.split("/", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": rest["param_groups"]}


def _save_tensors(tensors: dict[str, torch.Tensor], path: Path) -> None:
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(path))


class Checkpoints:
    """Save and restore the fine-tuning loops of one run (see the module docstring)."""

    def __init__(self, root: Path, every: int, fingerprint: str, is_main: bool = True) -> None:
        if every < 1:
            raise ValueError(f"checkpoint_steps must be at least 1, got {every}")
        self.root = root
        self.every = every
        self.fingerprint = fingerprint
        self.is_main = is_main
        stop = os.environ.get(STOP_AFTER_ENV)
        self.stop_after = int(stop) if stop else None
        self.steps_run = 0  # optimizer steps taken by this process, all stages together

    @staticmethod
    def for_run(output: Path) -> Path:
        """Where the checkpoints of the run directory `output` are kept."""
        return output.with_name(f"{output.name}.checkpoints")

    def exists(self) -> bool:
        return any(self.root.glob(f"*/{LATEST}"))

    def clear(self) -> None:
        """Remove all checkpoints (a fresh start, or the run was written)."""
        if self.is_main:
            shutil.rmtree(self.root, ignore_errors=True)

    def step_taken(self) -> None:
        """Count an optimizer step; the test hook raises TrainingInterrupted at its count."""
        self.steps_run += 1
        if self.stop_after is not None and self.steps_run >= self.stop_after:
            raise TrainingInterrupted(f"{STOP_AFTER_ENV}={self.stop_after}: stopped after {self.steps_run} steps")

    def save(
        self,
        stage: str,
        state: LoopState,
        model: torch.nn.Module,
        best_state: dict[str, torch.Tensor] | None,
        optimizer: torch.optim.Optimizer,
        scheduler: Any,
    ) -> None:
        """Write a checkpoint of `stage` and make it the latest (main process only)."""
        if not self.is_main:
            return
        stage_dir = self.root / stage
        stage_dir.mkdir(parents=True, exist_ok=True)
        name = f"epoch{state.epoch:03d}-batch{state.batches:06d}"
        staging = stage_dir / f".{name}.partial"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        _save_tensors(model.state_dict(), staging / "model.safetensors")
        previous = self._latest(stage)
        if best_state is not None:
            if previous is not None and previous[1]["loop"]["best"] == state.best and (previous[0] / "best.safetensors").is_file():
                os.link(previous[0] / "best.safetensors", staging / "best.safetensors")  # unchanged since: share it
            else:
                _save_tensors(best_state, staging / "best.safetensors")
        tensors, optimizer_rest = _optimizer_parts(optimizer.state_dict())
        _save_tensors(tensors, staging / "optimizer.safetensors")
        record = {
            "fingerprint": self.fingerprint,
            "loop": asdict(state),
            "optimizer": optimizer_rest,
            "scheduler": scheduler.state_dict(),
            "rng": rng_states(),
        }
        (staging / "state.json").write_text(json.dumps(record), encoding="utf-8")
        target = stage_dir / name
        shutil.rmtree(target, ignore_errors=True)
        staging.rename(target)
        write_atomically(stage_dir / LATEST, json.dumps({"checkpoint": name}))
        for old in stage_dir.iterdir():
            if old.is_dir() and old.name != name:
                shutil.rmtree(old, ignore_errors=True)

    def _latest(self, stage: str) -> tuple[Path, dict[str, Any]] | None:
        """The latest checkpoint folder of `stage` and its state.json, or None."""
        pointer = self.root / stage / LATEST
        if not pointer.is_file():
            return None
        folder = self.root / stage / json.loads(pointer.read_text(encoding="utf-8"))["checkpoint"]
        return folder, json.loads((folder / "state.json").read_text(encoding="utf-8"))

    def load(
        self, stage: str, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any
    ) -> tuple[LoopState, dict[str, torch.Tensor] | None, dict[str, Any]] | None:
        """Restore the latest checkpoint of `stage` into model, optimizer and scheduler.

        Returns (loop state, best weights or None, RNG states to set once the loop is back in
        position), or None where the stage has no checkpoint."""
        pointer = self.root / stage / LATEST
        if not pointer.is_file():
            return None
        try:
            folder, record = self._latest(stage)  # type: ignore[misc]  # the pointer exists
            if record["fingerprint"] != self.fingerprint:
                raise CheckpointError(
                    f"{folder}: written for another config or data (fingerprint {record['fingerprint']}, "
                    f"this run {self.fingerprint}); train without --resume to start over"
                )
            model.load_state_dict(load_file(str(folder / "model.safetensors")))
            best = load_file(str(folder / "best.safetensors")) if (folder / "best.safetensors").is_file() else None
            optimizer.load_state_dict(_optimizer_state(load_file(str(folder / "optimizer.safetensors")), record["optimizer"]))
            scheduler.load_state_dict(record["scheduler"])
            return LoopState(**record["loop"]), best, record["rng"]
        except CheckpointError:
            raise
        except Exception as err:  # noqa: BLE001 - any damage to the files reads as one clear error
            raise CheckpointError(f"{pointer.parent}: cannot resume from the latest checkpoint ({type(err).__name__}: {err})") from None
