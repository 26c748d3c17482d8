"""The fine-tuning loop shared by the NER and relation models.

accelerate places model and batches (one CPU, one GPU, or several under `accelerate launch`);
AdamW with linear warm-up and decay; after each epoch a dev score decides early stopping, and
the weights of the best epoch are loaded back into the model at the end.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import LengthGroupedSampler

from .config import OptimConfig


@dataclass
class FitResult:
    """What training did: dev score per epoch, the best one, wall time and device."""

    history: list[dict[str, float]]
    best_dev: float
    seconds: float
    examples: int
    device: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "history": self.history,
            "best_dev": self.best_dev,
            "seconds": round(self.seconds, 1),
            "examples": self.examples,
            "examples_per_second": round(self.examples * len(self.history) / max(self.seconds, 1e-9), 1),
            "device": self.device,
        }


def fit(
    accelerator: Accelerator,
    model: torch.nn.Module,
    dataset: Any,
    collate: Callable,
    hp: OptimConfig,
    seed: int,
    desc: str,
    dev_score: Callable[[torch.nn.Module], float],
) -> FitResult:
    """Train `model` in place; `dev_score(unwrapped_model)` runs on the main process after each epoch."""
    # Batches of similar lengths (random otherwise, as the Trainer's group_by_length does): on a
    # CPU, padding is most of the cost of randomly mixed sentence lengths.
    lengths = [len(ids) for ids in dataset["input_ids"]]
    sampler = LengthGroupedSampler(hp.batch_size, lengths=lengths, generator=torch.Generator().manual_seed(seed))
    loader = DataLoader(dataset, batch_size=hp.batch_size, sampler=sampler, collate_fn=collate)
    optimizer = torch.optim.AdamW(model.parameters(), lr=hp.learning_rate, weight_decay=hp.weight_decay)
    total = hp.epochs * math.ceil(len(loader) / accelerator.num_processes)
    if hp.max_steps is not None:
        total = min(total, hp.max_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(hp.warmup_ratio * total), total)
    wrapped, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)

    best, best_state, history, stale, step = -1.0, None, [], 0, 0
    started = time.perf_counter()
    # disable=None: bars on a terminal, none in logs; only the main process draws one.
    progress = tqdm(total=total, desc=desc, disable=None if accelerator.is_main_process else True)
    for epoch in range(1, hp.epochs + 1):
        wrapped.train()
        for batch in loader:
            loss = wrapped(**batch).loss
            accelerator.backward(loss)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            progress.update(1)
            progress.set_postfix(epoch=epoch, loss=f"{loss.item():.4f}")
            if step >= total:
                break
        score = 0.0
        if accelerator.is_main_process:
            score = dev_score(accelerator.unwrap_model(wrapped))
        score = float(accelerator.gather(torch.tensor([score], device=accelerator.device)).max())
        history.append({"epoch": epoch, "step": step, "dev_f1": score})
        accelerator.print(f"{desc}, epoch {epoch}: dev F1 {score:.4f}")
        if score > best:
            best, stale = score, 0
            best_state = copy.deepcopy(accelerator.unwrap_model(wrapped).state_dict())
        else:
            stale += 1
        if stale >= hp.patience or step >= total:
            break
    progress.close()
    model.load_state_dict(best_state)
    return FitResult(history, best, time.perf_counter() - started, len(dataset), str(accelerator.device))

