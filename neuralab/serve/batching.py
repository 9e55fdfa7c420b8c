"""Micro-batching: concurrent requests for one model share one forward pass.

The first waiting request opens a window of `max_wait_s`; requests arriving in it join
the batch until it holds `max_batch` samples. The forward pass runs in a worker thread
(PyTorch releases the GIL), so the event loop keeps reading requests and the next batch
fills while this one computes. Every sample's result is the same as predicting it alone:
inputs were validated before they were queued, rows are split back in order, and every
forward pass has at least `MIN_ROWS` rows (see `batch_invariant`).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable

import numpy as np

from neuralab.runs import Prediction

Job = tuple[np.ndarray, "asyncio.Future[Prediction]"]
Predict = Callable[[np.ndarray], Prediction]

# CPU matrix kernels (oneDNN/MKL) pick other code paths for batches of 1-3 rows, which
# round differently in the last bit; from 4 rows on, a row's result did not depend on the
# batch in any family we tried. Padding to 8 keeps a margin.
MIN_ROWS = 8


def batch_invariant(predict: Predict) -> Predict:
    """`predict` with inputs padded to at least `MIN_ROWS` rows, so that a sample gets the
    same bits alone, in a client's batch, or in a micro-batch with other requests."""

    def padded(x: np.ndarray) -> Prediction:
        if len(x) >= MIN_ROWS:
            return predict(x)
        filler = np.zeros((MIN_ROWS - len(x), *x.shape[1:]), dtype=x.dtype)
        return _rows(predict(np.concatenate([x, filler])), 0, len(x))

    return padded


class MicroBatcher:
    """Queues samples for `predict` and runs them in batches.

    Args:
        predict: Raw inputs (N, *input_shape) -> `Prediction` for those N samples.
        max_batch: Most samples in one forward pass (one bigger request runs alone).
        max_wait_s: How long the first request of a batch waits for company.
    """

    def __init__(self, predict: Predict, *, max_batch: int, max_wait_s: float) -> None:
        self._predict, self.max_batch, self.max_wait_s = predict, max_batch, max_wait_s
        self._queue: asyncio.Queue[Job] = asyncio.Queue()
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._held: Job | None = None  # a request too big for the last batch starts the next

    async def predict(self, x: np.ndarray) -> Prediction:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # first use, or a new event loop (test clients make one
            self._loop, self._held = loop, None  # per request): queue and worker live on it
            self._queue = asyncio.Queue()
            self._worker = asyncio.create_task(self._serve())
        future: asyncio.Future[Prediction] = loop.create_future()
        self._queue.put_nowait((x, future))
        return await future

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()

    async def _serve(self) -> None:
        while True:
            batch = await self._collect()
            try:
                joined = await asyncio.to_thread(
                    self._predict, np.concatenate([x for x, _ in batch])
                )
            except Exception as error:  # not swallowed: every waiting request receives it
                for _, future in batch:
                    if not future.done():
                        future.set_exception(error)
                continue
            start = 0
            for x, future in batch:
                if not future.done():  # a client that hung up cancelled its future
                    future.set_result(_rows(joined, start, start + len(x)))
                start += len(x)

    async def _collect(self) -> list[Job]:
        first, self._held = self._held, None
        batch = [first if first is not None else await self._queue.get()]
        size = len(batch[0][0])
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.max_wait_s
        while size < self.max_batch:
            if self._queue.empty():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                try:
                    job = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            else:
                job = self._queue.get_nowait()
            if size + len(job[0]) > self.max_batch:
                self._held = job
                break
            batch.append(job)
            size += len(job[0])
        return batch


def _rows(prediction: Prediction, start: int, stop: int) -> Prediction:
    """Samples `start:stop` of a batch's prediction."""

    def part(values):
        return None if values is None else values[start:stop]

    return dataclasses.replace(
        prediction,
        labels=part(prediction.labels),
        texts=part(prediction.texts),
        probabilities=part(prediction.probabilities),
        values=part(prediction.values),
    )
