"""Settings validation, initialisers and the SGD update."""

import math

import numpy as np
import pytest

from model.config import ConfigError, TrainingConfig
from model.init import InitSpec, initialize
from model.optim import OptimSettings, global_norm, sgd_step

# -- config ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "field,value",
    [
        ("learning_rate", 0),
        ("learning_rate", -1),
        ("learning_rate", math.nan),
        ("learning_rate", math.inf),
        ("learning_rate", "fast"),
        ("learning_rate", 1e300),
        ("momentum", 1.0),
        ("momentum", -0.1),
        ("clip_norm", 0),
        ("clip_norm", math.nan),
        ("num_filters", 0),
        ("num_filters", 1000),
        ("num_filters", 2.5),
        ("num_filters", True),
        ("kernel_size", 4),
        ("seed", -1),
        ("seed", "abc"),
        ("activation", "tanh"),
        ("pixel_scaling", "magic"),
        ("negative_slope", 1.5),
        ("history_budget_mb", 0),
    ],
)
def test_invalid_settings_are_refused_with_their_field(field, value):
    with pytest.raises(ConfigError) as info:
        TrainingConfig().with_changes(**{field: value})
    assert info.value.field == field
    assert info.value.message


def test_config_round_trips_through_dict():
    config = TrainingConfig(
        conv_init=InitSpec("uniform", {"low": 0, "high": 1}),
        pixel_scaling="raw",
        learning_rate=0.5,
        clip_norm=2.0,
        seed=17,
    )
    again = TrainingConfig.from_dict(config.to_dict())
    assert again == config
    with pytest.raises(ConfigError, match="not a setting"):
        TrainingConfig.from_dict({**config.to_dict(), "surprise": 1})


def test_live_settings_do_not_need_reset():
    base = TrainingConfig()
    assert not base.needs_reset(base.with_changes(learning_rate=0.3, momentum=0.9, clip_norm=1.0))
    assert base.needs_reset(base.with_changes(num_filters=2))
    assert base.needs_reset(base.with_changes(seed=5))


def test_whole_numbers_are_accepted_in_any_spelling():
    assert TrainingConfig(num_filters=3.0).num_filters == 3
    assert TrainingConfig(seed="42").seed == 42
    assert TrainingConfig(seed=np.int64(9)).seed == 9


# -- initialisers ----------------------------------------------------------------------------


def test_same_generator_state_gives_same_weights():
    spec = InitSpec("normal", {"std": 0.02})
    a = initialize(spec, (4, 3), fan_in=3, fan_out=4, rng=np.random.default_rng(5))
    b = initialize(spec, (4, 3), fan_in=3, fan_out=4, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "spec,check",
    [
        (InitSpec("uniform", {"low": 0, "high": 1}), lambda w: 0 <= w.min() and w.max() < 1),
        (InitSpec("normal", {"mean": 0, "std": 0.02}), lambda w: abs(w.std() - 0.02) < 0.001),
        (InitSpec("he_normal"), lambda w: abs(w.std() - math.sqrt(2 / 27)) < 0.01),
        (
            InitSpec("xavier_uniform"),
            lambda w: np.abs(w).max() <= math.sqrt(6 / (27 + 9)) and np.abs(w).max() > 0.3,
        ),
        (InitSpec("constant", {"value": 0.25}), lambda w: np.all(w == 0.25)),
    ],
)
def test_initialisers_draw_from_their_distribution(spec, check):
    w = initialize(spec, (20000,), fan_in=27, fan_out=9, rng=np.random.default_rng(0))
    assert check(w)


def test_initialiser_dtype_and_validation():
    w = initialize(
        InitSpec("he_normal"),
        (3,),
        fan_in=3,
        fan_out=1,
        rng=np.random.default_rng(0),
        dtype=np.float32,
    )
    assert w.dtype == np.float32
    with pytest.raises(ValueError, match="low"):
        InitSpec("uniform", {"low": 2, "high": 1})
    with pytest.raises(ValueError, match="takes"):
        InitSpec("he_normal", {"std": 1})
    with pytest.raises(ValueError, match="finite"):
        InitSpec("normal", {"std": math.nan})
    assert not InitSpec("uniform", {"low": 0, "high": 1}).can_be_negative()
    assert InitSpec("normal").can_be_negative()


# -- SGD ---------------------------------------------------------------------------------------


def _state():
    params = {"a": np.array([1.0, 2.0]), "b": np.array(3.0)}
    grads = {"a": np.array([3.0, 0.0]), "b": np.array(4.0)}
    velocity = {"a": np.zeros(2), "b": np.zeros(())}
    return params, grads, velocity


def test_plain_sgd_moves_by_learning_rate_times_gradient():
    params, grads, velocity = _state()
    result = sgd_step(params, grads, velocity, OptimSettings(0.5))
    np.testing.assert_array_equal(result.params["a"], [-0.5, 2.0])
    np.testing.assert_array_equal(result.update["b"], -2.0)
    assert result.clip_scale == 1.0
    np.testing.assert_array_equal(params["a"], [1.0, 2.0])  # inputs untouched


def test_momentum_accumulates_like_pytorch():
    params, grads, velocity = _state()
    settings = OptimSettings(0.1, momentum=0.9)
    first = sgd_step(params, grads, velocity, settings)
    second = sgd_step(first.params, grads, first.velocity, settings)
    np.testing.assert_allclose(second.velocity["a"], [3.0 * 1.9, 0.0])
    np.testing.assert_allclose(second.params["a"], [1.0 - 0.3 - 0.57, 2.0])


def test_clipping_scales_the_global_norm():
    params, grads, velocity = _state()  # the gradient's norm is 5
    result = sgd_step(params, grads, velocity, OptimSettings(1.0, clip_norm=1.0))
    assert result.clip_scale == pytest.approx(0.2)
    assert global_norm(result.update.values()) == pytest.approx(1.0)
    assert sgd_step(params, grads, velocity, OptimSettings(1.0, clip_norm=5.0)).clip_scale == 1.0


def test_global_norm_survives_huge_values():
    huge = [np.array([1e200, 1e200])]
    assert global_norm(huge) == pytest.approx(math.sqrt(2) * 1e200)
    assert math.isnan(global_norm([np.array([np.nan, 1.0])]))


def test_float32_update_stays_float32():
    params = {"w": np.ones(3, dtype=np.float32)}
    grads = {"w": np.full(3, 0.5, dtype=np.float32)}
    result = sgd_step(params, grads, {"w": np.zeros(3, np.float32)}, OptimSettings(0.1, 0.5, 10.0))
    assert result.params["w"].dtype == np.float32
    assert result.update["w"].dtype == np.float32


def test_a_decimal_comma_is_refused_with_a_hint():
    """A robustness pass: "0,5" was refused as "must be a number" with no hint why."""
    with pytest.raises(ConfigError) as info:
        TrainingConfig().with_changes(learning_rate="0,5")
    assert info.value.message == "must be a number written with a decimal point, got '0,5'"
    with pytest.raises(ConfigError) as info:
        TrainingConfig().with_changes(learning_rate="abc")
    assert info.value.message == "must be a number, got 'abc'"
