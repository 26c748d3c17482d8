"""Micro-batching for the server: requests that arrive within a few milliseconds share one model call.

Each request puts its texts on an asyncio queue with a future; one worker takes the first job,
gathers the jobs that arrive within `max_wait_s` (up to `max_batch` texts), runs the model once
in its own thread (so the event loop keeps accepting requests; always the same thread, so the
allocator does not grow an arena per pool thread) and hands every job its share of the
results. Only one model call runs at a time; jobs whose caller has given up (timed out) before
their batch starts are skipped.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class QueueFull(RuntimeError):
    """More texts are waiting than the batcher accepts; the caller should retry later."""


@dataclass
class BatchStats:
    """Counters for /health and the tests: how many jobs came in and how many model calls served them."""

    jobs: int = 0
    items: int = 0
    model_calls: int = 0
    largest_batch: int = 0


@dataclass
class _Job(Generic[T, R]):
    items: list[T]
    future: asyncio.Future[list[R]] = field(repr=False)


class MicroBatcher(Generic[T, R]):
    """Run `fn(items) -> results` (one result per item, in order) over batches of jobs."""

    def __init__(self, fn: Callable[[list[T]], list[R]], max_batch: int = 32, max_wait_s: float = 0.005, max_queue: int = 1024) -> None:
        if max_batch < 1 or max_wait_s < 0 or max_queue < 1:
            raise ValueError("max_batch and max_queue must be >= 1 and max_wait_s >= 0")
        self.fn, self.max_batch, self.max_wait_s, self.max_queue = fn, max_batch, max_wait_s, max_queue
        self.stats = BatchStats()
        self._queue: asyncio.Queue[_Job[T, R]] = asyncio.Queue()
        self._waiting = 0  # items queued, not yet taken by the worker
        self._worker: asyncio.Task[None] | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="model")

    def start(self) -> None:
        """Start the worker on the running event loop."""
        self._worker = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        """Cancel the worker (pending callers get CancelledError)."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
        self._thread.shutdown(wait=False, cancel_futures=True)

    @property
    def waiting(self) -> int:
        return self._waiting

    async def submit(self, items: list[T]) -> list[R]:
        """The results of `items`, computed in some batch; QueueFull when too much is waiting."""
        if self._waiting + len(items) > self.max_queue:
            raise QueueFull(f"{self._waiting} texts are waiting; the server takes at most {self.max_queue}")
        job: _Job[T, R] = _Job(list(items), asyncio.get_running_loop().create_future())
        self._waiting += len(job.items)
        self.stats.jobs += 1
        self.stats.items += len(job.items)
        await self._queue.put(job)
        return await job.future

    async def _next_batch(self) -> list[_Job[T, R]]:
        """The first waiting job and those arriving within max_wait_s, up to max_batch items."""
        jobs = [await self._queue.get()]
        size = len(jobs[0].items)
        deadline = asyncio.get_running_loop().time() + self.max_wait_s
        while size < self.max_batch:
            try:
                job = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), left)
                except asyncio.TimeoutError:
                    break
            jobs.append(job)
            size += len(job.items)
        return jobs

    async def _run(self) -> None:
        while True:
            jobs = await self._next_batch()
            self._waiting -= sum(len(j.items) for j in jobs)
            jobs = [j for j in jobs if not j.future.done()]  # callers that timed out are not served
            if not jobs:
                continue
            items = [item for j in jobs for item in j.items]
            self.stats.model_calls += 1
            self.stats.largest_batch = max(self.stats.largest_batch, len(items))
            try:
                results = await asyncio.get_running_loop().run_in_executor(self._thread, self.fn, items)
            except Exception as err:  # noqa: BLE001 - handed to every caller of the batch
                for j in jobs:
                    if not j.future.done():
                        j.future.set_exception(err)
                continue
            start = 0
            for j in jobs:
                if not j.future.done():
                    j.future.set_result(results[start : start + len(j.items)])
                start += len(j.items)
