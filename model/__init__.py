"""Training Inspector's engine: a NumPy conv → activation → logistic network, its data, the
training session with full history, diagnostics and snapshots. Pure NumPy, Pillow and the
standard library: no Qt, so it runs in scripts, tests and headless runs alike.
"""

from model.network import PARAM_KEYS, loss_and_gradients

__all__ = ["PARAM_KEYS", "loss_and_gradients"]
