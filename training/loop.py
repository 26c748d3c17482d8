"""The fine-tuning loop shared by the NER and relation models.

accelerate places model and batches (one CPU, one GPU, or several under `accelerate launch`);
AdamW with linear warm-up and decay (optionally with FGM adversarial steps, `adversarial_step`);
after each epoch a dev score decides early stopping, and the weights of the best epoch are
loaded back into the model at the end. With `checkpoints`
(training/checkpoint.py) the loop saves itself every `checkpoints.every` steps and at each
epoch end, and continues from the latest checkpoint where there is one: in the same sampler
order, with the batches already consumed skipped and the RNG states restored, so a resumed run
ends with the same weights as one never interrupted.
"""
from __future__ import annotations

import copy
import math
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import PreTrainedModel, get_linear_schedule_with_warmup
from transformers.trainer_pt_utils import LengthGroupedSampler

from inference.casing import shape_parameters

from .checkpoint import Checkpoints, LoopState, decode_bytes, encode_bytes, set_rng_states
from .config import OptimConfig


# A collapse (dev F1 falls to 0 after a better epoch: MPNet at 1e-4 has tagged everything O from
# its second epoch on) is undone this many times per model: see `roll_back`.
COLLAPSE_ROLLBACKS = 1


class TrainingDiverged(ValueError):
    """The loss became NaN or infinite: the weights are lost, and a lower learning rate is the usual cure."""


@dataclass
class FitResult:
    """What training did: dev score per epoch, the best one, wall time and device."""

    history: list[dict[str, float]]
    best_dev: float | None  # None: no dev split held out (a refit)
    seconds: float
    examples: int
    device: str
    # A refit's F1 on dev, which it trained on: a check that training worked (training/refit.py), not a score.
    trained_dev_f1: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "history": self.history,
            "best_dev": self.best_dev,
            "seconds": round(self.seconds, 1),
            "examples": self.examples,
            "examples_per_second": round(self.examples * len(self.history) / max(self.seconds, 1e-9), 1),
            "device": self.device,
            **({"trained_dev_f1": self.trained_dev_f1} if self.trained_dev_f1 is not None else {}),
        }


def parameter_groups(model: torch.nn.Module, hp: OptimConfig) -> list[dict[str, Any]]:
    """The optimizer's groups: every weight at `learning_rate`, the word-shape tables at
    `casing_learning_rate` where that is set."""
    shapes = shape_parameters(model) if hp.casing_learning_rate is not None else []
    if hp.casing_learning_rate is not None and not shapes:
        raise ValueError("casing_learning_rate is set but the model has no word-shape table (casing: false)")
    own = {id(p) for p in shapes}
    rest = [p for p in model.parameters() if id(p) not in own]
    return [{"params": rest}] + ([{"params": shapes, "lr": hp.casing_learning_rate}] if shapes else [])


def best_epoch(history: list[dict[str, float]], key: str = "dev_f1") -> dict[str, float] | None:
    """The history entry with the best dev F1 (`key`: "trained_dev_f1" in a refit's history), the
    earliest among equals: the epoch whose weights `fit` keeps, or a collapse rolls back to (None
    for an empty history)."""
    return max(history, key=lambda h: (h[key], -h["epoch"]), default=None)


def warn_collapse(desc: str, history: list[dict], hp: OptimConfig) -> None:
    """Say on stderr when dev F1 shows a collapse: 0 after every epoch, or 0 after a better epoch.

    Not an error: tiny smoke runs legitimately find nothing. On real data it is a collapse (MPNet
    runs at 1e-4 and 1.5e-4 tagged everything O, from the start or after a good first epoch), which
    must not pass unnoticed: the best epoch is kept, but it may be one epoch of a planned five."""
    peak = best_epoch(history)
    advice = (f"learning_rate {hp.learning_rate}, warmup_ratio {hp.warmup_ratio}: try a lower rate or a longer "
              "warmup (BENCHMARKS.md, 'Why MPNet collapses')")
    if peak is None or peak["dev_f1"] <= 0.0:
        print(f"warning: {desc}: dev F1 was 0 after every epoch: the model finds none of the dev split's gold "
              f"items; with real data, training collapsed ({advice})", file=sys.stderr)
        return
    at = peak["epoch"]
    fell = [h["epoch"] for h in history if h["epoch"] > at and h["dev_f1"] <= 0.0]
    if fell:
        print(f"warning: {desc}: dev F1 fell to 0 at epoch {fell[0]} after {peak['dev_f1']:.4f} at epoch {at}: "
              f"training collapsed; the epoch-{at} model is kept ({advice})", file=sys.stderr)


def roll_back(model: torch.nn.Module, best_state: dict[str, torch.Tensor], optimizer: Any, scheduler: Any) -> None:
    """Undo a collapse: the best epoch's weights back, the optimizer's moments cleared (they led
    into the collapse) and every learning rate halved for the rest of the schedule."""
    model.load_state_dict(best_state)
    optimizer.state.clear()
    for group in optimizer.param_groups:
        group["lr"] *= 0.5
    # The schedule's base rates (accelerate wraps the scheduler): its later steps stay halved, and a
    # checkpoint, which saves the scheduler, resumes them halved.
    schedule = getattr(scheduler, "scheduler", scheduler)
    schedule.base_lrs = [lr * 0.5 for lr in schedule.base_lrs]


def word_embeddings(model: torch.nn.Module) -> torch.nn.Embedding:
    """The word-embedding table of a Hugging Face model, or of the first one a wrapper holds
    (`RelationModel`, distillation's `DistilledTagger`)."""
    for module in model.modules():
        if isinstance(module, PreTrainedModel):
            return module.get_input_embeddings()
    raise ValueError(f"{type(model).__name__} holds no Hugging Face model: no word embeddings to perturb")


def adversarial_step(accelerator: Accelerator, wrapped: torch.nn.Module, batch: dict[str, Any], epsilon: float) -> None:
    """FGM (Miyato et al. 2017), after the batch's backward pass: move the word-embedding table
    by `epsilon` times its gradient over the gradient's norm (the direction that raises the loss
    most, to first order), add the gradients of the batch's loss read that way, and put the table
    back. Only the rows of the batch's tokens have a gradient, so only they move. Stateless:
    checkpoints and resume need nothing more."""
    table = word_embeddings(accelerator.unwrap_model(wrapped)).weight
    grad = table.grad
    norm = grad.norm() if grad is not None else None
    if norm is None or not torch.isfinite(norm) or norm == 0:
        return  # nothing to follow (a NaN loss is reported by the caller)
    rows = (grad != 0).any(-1).nonzero().squeeze(-1)
    with torch.no_grad():
        kept = table[rows].clone()  # put back exactly, not by subtracting (rounding)
        table[rows] += grad[rows] * (epsilon / norm)
    accelerator.backward(wrapped(**batch).loss)
    with torch.no_grad():
        table[rows] = kept


def fit(
    accelerator: Accelerator,
    model: torch.nn.Module,
    dataset: Any,
    collate: Callable,
    hp: OptimConfig,
    seed: int,
    desc: str,
    dev_score: Callable[[torch.nn.Module], float],
    checkpoints: Checkpoints | None = None,
    refit: bool = False,
) -> FitResult:
    """Train `model` in place; `dev_score(unwrapped_model)` runs on the main process after each
    epoch, keeps the best epoch and stops early; an epoch whose dev F1 falls to 0 after a better
    one is rolled back (`roll_back`, at most COLLAPSE_ROLLBACKS times). A `refit` trains on dev, so
    its dev F1 (history key `trained_dev_f1`) is no score, only a collapse detector: a collapse is
    rolled back alike, but all epochs run and the last is kept, its dev F1 the check that training
    worked (`FitResult.trained_dev_f1`; a refit that ends collapsed fails that check).

    With `checkpoints`, continue from the stage's latest checkpoint (stage name: `desc` in lower case)."""
    # Batches of similar lengths (random otherwise, as the Trainer's group_by_length does): on a
    # CPU, padding is most of the cost of randomly mixed sentence lengths.
    lengths = [len(ids) for ids in dataset["input_ids"]]
    generator = torch.Generator().manual_seed(seed)
    sampler = LengthGroupedSampler(hp.batch_size, lengths=lengths, generator=generator)
    loader = DataLoader(dataset, batch_size=hp.batch_size, sampler=sampler, collate_fn=collate)
    optimizer = torch.optim.AdamW(parameter_groups(model, hp), lr=hp.learning_rate, weight_decay=hp.weight_decay)
    total = hp.epochs * math.ceil(len(loader) / accelerator.num_processes)
    if hp.max_steps is not None:
        total = min(total, hp.max_steps)
    scheduler = get_linear_schedule_with_warmup(optimizer, int(hp.warmup_ratio * total), total)
    wrapped, optimizer, loader, scheduler = accelerator.prepare(model, optimizer, loader, scheduler)

    stage = desc.lower()
    key = "trained_dev_f1" if refit else "dev_f1"
    state, best_state, rng = LoopState(), None, None
    restored = checkpoints.load(stage, model, optimizer, scheduler) if checkpoints else None
    if restored is not None:
        state, best_state, rng = restored
        set_rng_states(rng)
        accelerator.print(f"{desc}: resuming at epoch {state.epoch}, batch {state.batches}, step {state.step}")

    def save() -> None:
        if checkpoints is not None:
            state.seconds = time.perf_counter() - started
            checkpoints.save(stage, state, model, best_state, optimizer, scheduler)

    started = time.perf_counter() - state.seconds
    # disable=None: bars on a terminal, none in logs; only the main process draws one.
    progress = tqdm(total=total, initial=state.step, desc=desc, disable=None if accelerator.is_main_process else True)
    for epoch in range(state.epoch, hp.epochs + 1) if not state.done else []:
        wrapped.train()
        batches = iter(loader)
        if state.batches:
            # Mid-epoch resume: the epoch's batch order again, the batches already trained on
            # skipped, then the RNG states of the checkpoint (creating the iterator draws from them).
            generator.set_state(decode_bytes(state.epoch_sampler_state))
            for _ in range(state.batches):
                next(batches)
            set_rng_states(rng)
        else:
            state.epoch, state.epoch_sampler_state = epoch, encode_bytes(generator.get_state())
        for batch in batches:
            loss = wrapped(**batch).loss
            accelerator.backward(loss)
            if hp.adversarial_epsilon:
                adversarial_step(accelerator, wrapped, batch, hp.adversarial_epsilon)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            state.step += 1
            state.batches += 1
            progress.update(1)
            value = loss.item()  # read once the step is queued, as the progress bar always did: no extra GPU stall
            if not math.isfinite(value):
                raise TrainingDiverged(f"{desc}, epoch {epoch}, step {state.step}: the loss is {value}; training "
                                       f"diverged at learning_rate {hp.learning_rate}: try a lower one")
            progress.set_postfix(epoch=epoch, loss=f"{value:.4f}")
            if state.step >= total:
                break
            if checkpoints is not None:
                if state.step % checkpoints.every == 0:
                    save()
                checkpoints.step_taken()
        score = main_process_score(accelerator, dev_score, wrapped)
        state.history.append({"epoch": epoch, "step": state.step, key: score})
        accelerator.print(f"{desc}, epoch {epoch}: dev F1 {score:.4f}" + (" (a refit trains on dev: no score)" if refit else ""))
        if score > state.best:
            state.best, state.stale = score, 0
            best_state = copy.deepcopy(accelerator.unwrap_model(wrapped).state_dict())
        elif (score <= 0.0 < state.best and epoch < hp.epochs
              and sum("rolled_back_to" in h for h in state.history) < COLLAPSE_ROLLBACKS):
            # Every process rolls back alike: the score is the main process's, gathered.
            roll_back(accelerator.unwrap_model(wrapped), best_state, optimizer, scheduler)
            state.stale = 0
            back_to = best_epoch(state.history, key)["epoch"]
            state.history[-1]["rolled_back_to"] = back_to
            if accelerator.is_main_process:
                print(f"warning: {desc}: dev F1 fell to 0 at epoch {epoch} after {state.best:.4f}: training collapsed; "
                      f"rolled back to the epoch-{back_to} weights, optimizer moments cleared, learning rates halved "
                      "for the remaining epochs", file=sys.stderr)
        else:
            state.stale += 1
        state.epoch, state.batches = epoch + 1, 0
        state.done = (state.stale >= hp.patience and not refit) or state.step >= total or epoch == hp.epochs
        save()
        if state.done:
            break
    progress.close()
    seconds = time.perf_counter() - started
    if refit:  # the last epoch is kept: the reference chose the number of epochs
        return FitResult(state.history, None, seconds, len(dataset), str(accelerator.device), trained_dev_f1=state.history[-1][key])
    model.load_state_dict(best_state)
    if accelerator.is_main_process:
        warn_collapse(desc, state.history, hp)
    return FitResult(state.history, state.best, seconds, len(dataset), str(accelerator.device))


def main_process_score(accelerator: Accelerator, dev_score: Callable[[torch.nn.Module], float], wrapped: torch.nn.Module) -> float:
    """`dev_score` of the unwrapped model, computed on the main process only and shared with all."""
    score = 0.0
    if accelerator.is_main_process:
        score = dev_score(accelerator.unwrap_model(wrapped))
    return float(accelerator.gather(torch.tensor([score], device=accelerator.device)).max())
