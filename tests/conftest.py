"""Fixtures for every test folder."""

import threading

import pytest

from model import network


@pytest.fixture
def share_every_batch(monkeypatch):
    """Threads share even the tests' small batches (``network.forward(threads=…)``)."""
    monkeypatch.setattr(network, "PART_MIN_IMAGE_VALUES", 1)
    monkeypatch.setattr(network, "PART_MIN_FILTERS", 1)


@pytest.fixture
def share_between_processes(monkeypatch):
    """Helper processes share even the tests' small batches (``model.parallel``)."""
    from model import parallel

    monkeypatch.setattr(parallel, "MIN_BATCH_VALUES", 0)


@pytest.fixture
def forward_calls(monkeypatch):
    """The engine's forward passes from here on: the name of the thread that made each."""
    calls = []
    forward = network.forward

    def counting(*args, **kwargs):
        calls.append(threading.current_thread().name)
        return forward(*args, **kwargs)

    monkeypatch.setattr(network, "forward", counting)
    return calls
