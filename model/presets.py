"""Named starting points: the question's failing setup, the answer's fix, and a setup that
learns the harder Shapes example.

``seed`` reproduces ../shared/seed/question.md: one 3×3×3 filter, uniform(0, 1) weights in both
layers, raw 0..255 pixels, one image per update. Its learning rate makes the first update (on
the cross, label 0, predicted 1 with a logit in the hundreds of thousands) drive every filter
weight tens of thousands negative; from then on every ReLU output is 0.

``recommended`` follows the answer: N(0, 0.02) in both layers, 0..1 pixels and a learning rate
at which the two images are classified correctly within 50 iterations with no dead filter.

``shapes`` is for the Shapes example, which one filter updated image by image does not learn:
it stays near 50%, and within a few hundred updates over 99% of its ReLU outputs are zero.
Eight filters, the whole batch per update. Measured over seeds 0–7: at least 95% accuracy
after 324–510 iterations, and 96–100% at 800, with at most one of the eight filters dead.

All three use seed 4. A zero-centred filter's response to the white background is the sum of its 27
weights, which is negative for about half of all seeds: the background is then dead from the
start and some seeds never learn within 50 iterations even at this learning rate (the README
gives the measured share). Seed 4 is one that learns; the uniform(0, 1) setup fails for every
seed. Keeping one seed for both lets the two runs be compared on the same sample order.
"""

from __future__ import annotations

from dataclasses import dataclass

from model.config import TrainingConfig
from model.init import InitSpec


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    description: str
    config: TrainingConfig
    example: str = "question"


PRESET_SEED = 4
_UNIFORM_0_1 = InitSpec("uniform", {"low": 0.0, "high": 1.0})
_NORMAL_0_002 = InitSpec("normal", {"mean": 0.0, "std": 0.02})
#: The answer's fix ('recommended'), which 'shapes' builds on.
_ANSWER = TrainingConfig(
    conv_init=_NORMAL_0_002,
    classifier_init=_NORMAL_0_002,
    pixel_scaling="unit",
    update_mode="per_image",
    learning_rate=0.01,
    seed=PRESET_SEED,
)

PRESETS = {
    "seed": Preset(
        name="seed",
        title="The question's setup (fails)",
        description=(
            "One 3×3×3 filter, weights uniform in 0..1, raw 0..255 pixels, one image per "
            "update. The first update drives the filter tens of thousands negative and every "
            "ReLU output goes to zero."
        ),
        config=TrainingConfig(
            conv_init=_UNIFORM_0_1,
            classifier_init=_UNIFORM_0_1,
            pixel_scaling="raw",
            update_mode="per_image",
            learning_rate=0.5,
            seed=PRESET_SEED,
        ),
    ),
    "recommended": Preset(
        name="recommended",
        title="The answer's fix (learns)",
        description=(
            "Weights drawn from N(0, 0.02), pixels scaled to 0..1, a low learning rate (0.01): "
            "the question's two images are classified correctly within a few iterations and no "
            "filter dies. One filter is not enough for the Shapes example: see the next preset."
        ),
        config=_ANSWER,
    ),
    "shapes": Preset(
        name="shapes",
        title="More filters, whole batch (learns Shapes)",
        description=(
            "For the Shapes example (File → Examples): 80 crosses and rings of random "
            "position, size and colours. The answer's fix has one filter and learns from one "
            "image at a time; on these it stays near chance while almost every ReLU output goes "
            "to zero. Eight filters from N(0, 0.02), pixels 0..1, every update on all images "
            "at learning rate 0.03: over 95% right within about 500 iterations; one of the "
            "eight filters may still die."
        ),
        # The answer's fix with more filters, each update on every image.
        config=_ANSWER.with_changes(num_filters=8, update_mode="full_batch", learning_rate=0.03),
        example="shapes",
    ),
}


def preset_config(name: str, **changes) -> TrainingConfig:
    """The config of preset ``name`` with ``changes`` applied."""
    if name not in PRESETS:
        raise KeyError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name].config.with_changes(**changes) if changes else PRESETS[name].config
