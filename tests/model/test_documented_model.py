"""The README's "Checking your own implementation" is true: a separate implementation written
from that section alone (plain NumPy and Pillow; from the app only the runs it checks, their
settings and snapshots) reproduces the app's initial weights, its order of images, its updates
(starting from a snapshot's .npz as the section says to) and its pixels."""

import numpy as np
import pytest
from PIL import Image, ImageOps

from model.data import load_dataset, load_example
from model.init import InitSpec
from model.presets import preset_config
from model.session import TrainingSession
from model.snapshot import save_snapshot

# -- the README's section, as someone checking their own code would write it -----------------


def readme_init(seed, filters, kernel, features, conv, classifier):
    """conv first (F, 3, K, K), then the classifier (F·H'·W',), one generator, float64."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0]))

    def draw(spec, shape, fan_in, fan_out):
        kind, p = spec
        if kind == "uniform":
            return rng.uniform(p["low"], p["high"], shape)
        if kind == "normal":
            return rng.normal(p["mean"], p["std"], shape)
        if kind == "he_normal":
            return rng.normal(0, np.sqrt(2 / fan_in), shape)
        limit = np.sqrt(6 / (fan_in + fan_out))
        return rng.uniform(-limit, limit, shape)

    w = draw(conv, (filters, 3, kernel, kernel), 3 * kernel**2, filters * kernel**2)
    v = draw(classifier, (features,), features, 1)
    return w, v


def readme_order(seed, iteration, n, shuffle):
    epoch, position = divmod(iteration - 1, n)
    order = np.arange(n)
    if shuffle:
        order = np.random.default_rng(np.random.SeedSequence([seed, 1, epoch])).permutation(n)
    return int(order[position])


def readme_forward(p, x, padding="same", slope=None):
    """Cross-correlation with zero padding K // 2, bias, (leaky) ReLU, one logit per image."""
    w, b = p["conv.weight"], p["conv.bias"]
    k = w.shape[-1]
    pad = k // 2 if padding == "same" else 0
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    n, _, hp, wp = xp.shape
    out_h, out_w = hp - k + 1, wp - k + 1
    z = np.zeros((n, w.shape[0], out_h, out_w))
    for u in range(k):
        for v in range(k):
            patch = xp[:, :, u : u + out_h, v : v + out_w]
            z += np.einsum("nchw,fc->nfhw", patch, w[:, :, u, v])
    z += b[None, :, None, None]
    a = np.maximum(z, 0) if slope is None else np.where(z > 0, z, slope * z)
    s = a.reshape(n, -1) @ p["classifier.weight"] + p["classifier.bias"]
    return xp, z, a, s


def readme_loss(s, y):
    return np.mean(np.maximum(s, 0) + np.log1p(np.exp(-np.abs(s))) - y * s)


def readme_gradients(p, x, y, padding="same", slope=None):
    """Gradients of the mean loss over the images of x, by hand."""
    xp, z, a, s = readme_forward(p, x, padding, slope)
    n = len(x)
    ds = (0.5 * (1 + np.tanh(s / 2)) - y) / n  # σ(s), without overflow
    grads = {
        "classifier.weight": a.reshape(n, -1).T @ ds,
        "classifier.bias": np.asarray(ds.sum()),
    }
    da = (ds[:, None] * p["classifier.weight"][None, :]).reshape(a.shape)
    dz = da * np.where(z > 0, 1.0, 0.0 if slope is None else slope)
    k = p["conv.weight"].shape[-1]
    out_h, out_w = z.shape[2:]
    dw = np.zeros_like(p["conv.weight"])
    for u in range(k):
        for v in range(k):
            dw[:, :, u, v] = np.einsum("nfhw,nchw->fc", dz, xp[:, :, u : u + out_h, v : v + out_w])
    grads["conv.weight"] = dw
    grads["conv.bias"] = dz.sum(axis=(0, 2, 3))
    return grads


def readme_step(p, velocity, grads, lr, momentum=0.0, clip=None):
    norm = np.sqrt(sum(np.sum(g**2) for g in grads.values()))
    scale = clip / norm if clip is not None and norm > clip else 1.0
    new_p, new_v = {}, {}
    for key in p:
        v = momentum * velocity[key] + grads[key] * scale
        new_p[key], new_v[key] = p[key] - lr * v, v
    return new_p, new_v


# -- checks ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def question():
    return load_example("question")


@pytest.mark.parametrize(
    "conv, classifier",
    [
        (("uniform", {"low": 0.0, "high": 1.0}), ("uniform", {"low": 0.0, "high": 1.0})),
        (("normal", {"mean": 0.0, "std": 0.02}), ("he_normal", {})),
        (("xavier_uniform", {}), ("normal", {"mean": 0.1, "std": 0.5})),
    ],
)
def test_the_initial_weights_are_drawn_as_written(question, conv, classifier):
    config = preset_config(
        "seed",
        seed=11,
        num_filters=2,
        conv_init=InitSpec(*conv),
        classifier_init=InitSpec(*classifier),
    )
    params = TrainingSession(question, config).latest.params
    w, v = readme_init(11, 2, 3, 2 * 32 * 32, conv, classifier)
    assert np.array_equal(params["conv.weight"], w)
    assert np.array_equal(params["classifier.weight"], v)
    assert not params["conv.bias"].any() and params["classifier.bias"] == 0


def test_the_order_of_images_is_the_one_written(shapes_order):
    session, n, seed = shapes_order
    batches = [session.record(k).batch for k in range(1, 2 * n + 6)]
    assert batches == [(readme_order(seed, k, n, shuffle=True),) for k in range(1, 2 * n + 6)]
    assert batches[:n] != batches[n : 2 * n]  # (a new order every epoch)


@pytest.fixture(scope="module")
def shapes_order():
    shapes = load_example("shapes")
    config = preset_config("shapes", seed=3, shuffle=True, update_mode="per_image")
    session = TrainingSession(shapes, config)
    session.run(2 * len(shapes) + 5, pause_on_findings=False)
    return session, len(shapes), 3


@pytest.mark.parametrize(
    "changes",
    [
        {},  # the question's setup: raw pixels, the filter dies at once
        {"pixel_scaling": "unit", "learning_rate": 0.05, "momentum": 0.9, "clip_norm": 0.5},
        {"pixel_scaling": "standardize", "activation": "leaky_relu", "negative_slope": 0.1},
        {"pixel_scaling": "unit", "update_mode": "full_batch", "padding": "valid"},
    ],
)
def test_an_update_made_as_written_from_a_snapshot_matches_the_next_snapshot(
    question, tmp_path, changes
):
    config = preset_config("seed", num_filters=2, **changes)
    session = TrainingSession(question, config)
    session.run(3, pause_on_findings=False)
    records = [session.record(k) for k in range(4)]
    saved = [
        np.load(save_snapshot(r, config, (), tmp_path, f"s{k}")[3]) for k, r in enumerate(records)
    ]
    x = session.inputs.astype(np.float64)
    y = question.labels.astype(np.float64)
    slope = config.negative_slope if config.activation == "leaky_relu" else None
    names = ("conv.weight", "conv.bias", "classifier.weight", "classifier.bias")
    for k in range(3):
        before, after = saved[k], saved[k + 1]
        params = {name: before[name] for name in names}
        velocity = {
            name: before[f"velocity.{name}"] if k else np.zeros_like(params[name]) for name in names
        }
        batch = after["batch"]
        grads = readme_gradients(params, x[batch], y[batch], config.padding, slope)
        for name in names:
            np.testing.assert_allclose(grads[name], after[f"grad.{name}"], rtol=1e-9, atol=1e-12)
        new_params, _ = readme_step(
            params, velocity, grads, config.learning_rate, config.momentum, config.clip_norm
        )
        for name in names:
            np.testing.assert_allclose(new_params[name], after[name], rtol=1e-9, atol=1e-9)
        _, _, a, s = readme_forward(new_params, x, config.padding, slope)
        np.testing.assert_allclose(s, after["logits"], rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(a, after["activation"], rtol=1e-9, atol=1e-9)
        assert readme_loss(s, y) == pytest.approx(records[k + 1].metrics["loss"], rel=1e-9)


def readme_pixels(path, size):
    """EXIF upright, RGB; with transparency resized as RGBa then put onto white; BOX."""
    height, width = size
    with Image.open(path) as image:
        image = ImageOps.exif_transpose(image)
        if "A" in image.getbands() or "transparency" in image.info:
            rgba = np.asarray(
                image.convert("RGBA").convert("RGBa").resize((width, height), Image.BOX)
            )
            rgb = rgba[..., :3] + (255 - rgba[..., 3:])
        else:
            rgb = np.asarray(image.convert("RGB").resize((width, height), Image.BOX))
    return rgb.transpose(2, 0, 1)


def test_the_pixels_are_made_as_written(tmp_path):
    rng = np.random.default_rng(5)

    def save(name, mode, size):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        bands = len(mode)
        pixels = rng.integers(0, 256, (size[1], size[0], bands), dtype=np.uint8)
        Image.fromarray(pixels, mode).save(tmp_path / name)

    save("0_a/one.png", "RGB", (16, 16))
    save("0_a/two.png", "RGB", (24, 20))  # resized (W 24, H 20)
    save("0_a/three.png", "RGBA", (37, 53))  # resized, with transparency
    save("1_b/four.png", "RGB", (16, 16))
    save("1_b/five.png", "RGBA", (16, 16))
    dataset = load_dataset(tmp_path)
    assert dataset.size == (16, 16)
    for path, pixels in zip(dataset.paths, dataset.images, strict=True):
        assert np.array_equal(pixels, readme_pixels(path, (16, 16))), path

    config = preset_config("seed", pixel_scaling="standardize")
    inputs = TrainingSession(dataset, config).inputs
    values = dataset.images.astype(np.float64)
    mean = values.mean(axis=(0, 2, 3))
    std = values.std(axis=(0, 2, 3))  # (population: ddof 0)
    expected = (values - mean[None, :, None, None]) / std[None, :, None, None]
    np.testing.assert_allclose(inputs, expected, rtol=1e-12, atol=1e-12)
