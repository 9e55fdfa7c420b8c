"""Micro-batching: concurrent requests share forward passes, and every result equals
predicting that sample alone."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from sklearn.datasets import load_digits

from neuralab.runs import Predictor
from neuralab.serve.batching import MIN_ROWS, MicroBatcher, batch_invariant


class Counting:
    """A predictor's `predict`, recording the size of every batch it is given."""

    def __init__(self, predictor: Predictor) -> None:
        self.predictor, self.sizes = predictor, []

    def __call__(self, x: np.ndarray):
        self.sizes.append(len(x))
        return self.predictor.predict(x)


async def _concurrently(batcher: MicroBatcher, requests: list[np.ndarray]):
    try:
        return await asyncio.gather(*(batcher.predict(x) for x in requests))
    finally:
        await batcher.close()


def test_concurrent_requests_share_passes_and_match_unbatched(served):
    predictor = Predictor.load(served["digits"])
    counting = Counting(predictor)
    images = load_digits().images[:20].astype(np.float32)
    requests = [images[i : i + 1] for i in range(20)]
    batcher = MicroBatcher(batch_invariant(counting), max_batch=8, max_wait_s=0.05)
    results = asyncio.run(_concurrently(batcher, requests))
    assert len(counting.sizes) < 20
    assert max(counting.sizes) <= 8
    assert sum(counting.sizes) >= 20
    for x, result in zip(requests, results, strict=True):
        alone = batch_invariant(predictor.predict)(x)
        assert result.labels == alone.labels
        np.testing.assert_array_equal(result.probabilities, alone.probabilities)


def test_requests_keep_their_order_when_one_overflows_a_batch(served):
    predictor = Predictor.load(served["digits"])
    counting = Counting(predictor)
    images = load_digits().images[:12].astype(np.float32)
    requests = [images[0:3], images[3:9], images[9:12]]  # 3 + 6 > max_batch: 6 waits
    batcher = MicroBatcher(counting, max_batch=8, max_wait_s=0.05)
    results = asyncio.run(_concurrently(batcher, requests))
    assert counting.sizes == [3, 6, 3]
    labels = [label for result in results for label in result.labels]
    assert labels == predictor.predict(images).labels


def test_a_sample_gets_the_same_bits_alone_and_in_any_batch(served):
    predict = batch_invariant(Predictor.load(served["digits"]).predict)
    images = load_digits().images[:40].astype(np.float32)
    together = predict(images).probabilities
    for size in (1, 2, 3, MIN_ROWS, 13):
        alone = np.concatenate([predict(images[i : i + size]).probabilities for i in (0, size)])
        np.testing.assert_array_equal(alone, together[: 2 * size])


def test_a_failing_pass_fails_every_request_in_it():
    def broken(x):
        raise RuntimeError("boom")

    async def scenario():
        batcher = MicroBatcher(broken, max_batch=4, max_wait_s=0.01)
        try:
            return await asyncio.gather(
                batcher.predict(np.zeros((1, 2))),
                batcher.predict(np.zeros((1, 2))),
                return_exceptions=True,
            )
        finally:
            await batcher.close()

    results = asyncio.run(scenario())
    assert [str(r) for r in results] == ["boom", "boom"]


@pytest.mark.parametrize("batching", [False, True])
def test_app_answers_the_same_with_and_without_batching(client_for, served, batching):
    images = load_digits().images[:4].tolist()
    url = f"/v1/models/{served['digits'].name}/predict"
    plain = client_for().post(url, json={"inputs": images}).json()
    with client_for(batching=batching, max_wait_ms=1) as client:
        assert client.post(url, json={"inputs": images}).json() == plain


def test_an_unbatched_forward_pass_leaves_the_server_answering(client_for, served, monkeypatch):
    started, release = threading.Event(), threading.Event()
    original = Predictor.predict

    def slow(self, x):
        started.set()
        release.wait(timeout=5)  # bounded: a blocked event loop answers after this
        return original(self, x)

    monkeypatch.setattr(Predictor, "predict", slow)
    url = f"/v1/models/{served['digits'].name}/predict"
    with client_for(batching=False) as client, ThreadPoolExecutor(1) as pool:
        pending = pool.submit(client.post, url, json={"inputs": load_digits().images[:2].tolist()})
        assert started.wait(timeout=5)
        health = client.get("/healthz")  # answered while the forward pass still runs
        finished_first = pending.done()
        release.set()
        assert pending.result(timeout=10).status_code == 200
    assert health.status_code == 200
    assert not finished_first
