import numpy as np
import pytest

from model.data import load_example


def make_params(rng, *, filters=2, kernel=3, height=5, width=4, padding="same", dtype=np.float64):
    """Random parameters for (N, 3, height, width) inputs."""
    pad = kernel // 2 if padding == "same" else 0
    out_h, out_w = height + 2 * pad - kernel + 1, width + 2 * pad - kernel + 1
    return {
        "conv.weight": rng.normal(scale=0.5, size=(filters, 3, kernel, kernel)).astype(dtype),
        "conv.bias": rng.normal(scale=0.1, size=filters).astype(dtype),
        "classifier.weight": rng.normal(scale=0.5, size=filters * out_h * out_w).astype(dtype),
        "classifier.bias": np.asarray(rng.normal(scale=0.1), dtype=dtype),
    }


@pytest.fixture
def rng():
    return np.random.default_rng(2024)


@pytest.fixture(scope="session")
def question():
    """The question's two images (a dataset is immutable, so every test may share it)."""
    return load_example("question")
