"""The training session: the one owner of a run's state.

``TrainingSession`` holds the config, dataset, parameters, optimizer state, iteration counter and
history. Only its methods change them. Every step returns an immutable ``StepRecord``.

Determinism: the initial weights come from a generator seeded by ``SeedSequence([seed, 0])``
and the per-image order of epoch e from ``SeedSequence([seed, 1, e])``, so the same config,
dataset and seed give a bit-identical run, and any iteration can be recomputed exactly by
replaying from an earlier one.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from types import MappingProxyType

import numpy as np

from model import diagnostics, network
from model.config import LIVE_FIELDS, TrainingConfig
from model.data import Dataset, pixel_statistics, scale_pixels
from model.diagnostics import Finding
from model.history import History, strip_maps
from model.init import initialize
from model.optim import OptimSettings, sgd_step
from model.record import (
    CONV_KEYS,
    METRIC_NAMES,
    StepRecord,
    compute_metrics,
    dead_fraction_per_filter,
    frozen_array,
    frozen_arrays,
)

INIT_STREAM = 0
SHUFFLE_STREAM = 1


def init_params(config: TrainingConfig, image_size: tuple[int, int]) -> dict[str, np.ndarray]:
    """Initial parameters for ``config`` on images of ``image_size`` (H, W).

    Conv weights (F, 3, K, K) are drawn first, then the classifier weights (D,), both from one
    generator seeded by the config's seed; biases start at 0. The arrays of a weights file
    (``config.initial_weights``) then replace those drawn (``model.weights_file``).
    """
    rng = np.random.default_rng(np.random.SeedSequence([config.seed, INIT_STREAM]))
    dtype = np.dtype(config.dtype)
    f, k = config.num_filters, config.kernel_size
    out_h, out_w = config.map_size(image_size)
    features = f * out_h * out_w
    conv_w = initialize(
        config.conv_init, (f, 3, k, k), fan_in=3 * k * k, fan_out=f * k * k, rng=rng, dtype=dtype
    )
    cls_w = initialize(
        config.classifier_init, (features,), fan_in=features, fan_out=1, rng=rng, dtype=dtype
    )
    params = {
        "conv.weight": conv_w,
        "conv.bias": np.zeros(f, dtype=dtype),
        "classifier.weight": cls_w,
        "classifier.bias": np.zeros((), dtype=dtype),
    }
    if config.initial_weights is not None:
        for key, values in config.initial_weights.arrays.items():
            params[key] = values.astype(dtype)
    return params


@functools.lru_cache(maxsize=64)
def _epoch_order(seed: int, epoch: int, num_images: int, shuffle: bool) -> np.ndarray:
    if not shuffle:
        order = np.arange(num_images)
    else:
        rng = np.random.default_rng(np.random.SeedSequence([seed, SHUFFLE_STREAM, epoch]))
        order = rng.permutation(num_images)
    order.flags.writeable = False
    return order


def batch_indices(config: TrainingConfig, iteration: int, num_images: int) -> np.ndarray:
    """Dataset indices used by the update of ``iteration`` (1, 2, ...).

    Per-image mode walks through the images one per iteration, epoch after epoch (in dataset
    order, or a seeded permutation per epoch when shuffling); full-batch mode uses them all.
    """
    if config.update_mode == "full_batch":
        return np.arange(num_images)
    epoch, position = divmod(iteration - 1, num_images)
    order = _epoch_order(config.seed, epoch, num_images, config.shuffle)
    return order[position : position + 1]


@dataclass(frozen=True)
class RunResult:
    """What ``TrainingSession.run`` did: iterations taken and the finding that paused it."""

    steps: int
    paused_by: Finding | None


class Interrupted(Exception):
    """``TrainingSession.record`` stopped recomputing a thinned iteration when asked to."""


@dataclass(frozen=True)
class _Ahead:
    """A step computed ahead (``TrainingSession.compute_ahead``), with what it came from."""

    previous: StepRecord
    config: TrainingConfig
    record: StepRecord
    measured: tuple | None


#: In full-batch mode the forward pass that measured the newest record on the whole dataset is
#: the forward pass of the next update (same parameters, same images): it is kept for it when its
#: ReLU outputs take at most this much memory, instead of being computed twice.
REUSE_FORWARD_MAX_BYTES = 32 * 2**20


def _frozen_map(array: np.ndarray) -> np.ndarray:
    """A read-only view of a map of a forward pass, for a record.

    No copy is needed: the engine hands a map's buffer out again only once nothing refers to
    it (``model.workspace``), and this view does, while the session never writes to the maps
    of a forward pass it made. (Copying them was a tenth of a step with 16 filters.)
    """
    view = array.view()
    view.flags.writeable = False
    return view


class TrainingSession:
    """One run of the network on a dataset.

    Parameters
    ----------
    dataset : labeled images (``model.data.Dataset``).
    config : settings; defaults to ``TrainingConfig()``.
    """

    def __init__(
        self, dataset: Dataset, config: TrainingConfig | None = None, *, threads: int = 1
    ) -> None:
        self._dataset = dataset
        self._config = config or TrainingConfig()
        # Threads a large batch is shared out between (``network.forward``). Fixed for the
        # session: its numbers depend on it by rounding, and a rewind replays updates.
        self._threads = threads
        self.reset()

    # -- read-only views -------------------------------------------------------------------

    @property
    def config(self) -> TrainingConfig:
        return self._config

    @property
    def dataset(self) -> Dataset:
        return self._dataset

    @property
    def history(self) -> History:
        return self._history

    @property
    def latest(self) -> StepRecord:
        """The newest record (the current state)."""
        return self._latest

    @property
    def iteration(self) -> int:
        return self._latest.iteration

    @property
    def pixel_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and std (0..255 scale) of the loaded images."""
        return self._stats

    @property
    def inputs(self) -> np.ndarray:
        """(N, 3, H, W) network inputs after pixel scaling, read-only."""
        return self._x

    @property
    def settings(self) -> OptimSettings:
        """Settings the next update will use."""
        return OptimSettings(
            self._config.learning_rate, self._config.momentum, self._config.clip_norm
        )

    @property
    def epoch_length(self) -> int:
        """Iterations per epoch: N in per-image mode, 1 in full-batch mode."""
        return len(self._dataset) if self._config.update_mode == "per_image" else 1

    # -- changing the run ------------------------------------------------------------------

    def reset(self, config: TrainingConfig | None = None, dataset: Dataset | None = None) -> None:
        """Start again from iteration 0 (same seed: same initial weights).

        ``config`` and ``dataset`` replace the current ones when given. A reset that fails (a
        kernel that does not fit the images, no memory for the maps) changes nothing: the run
        goes on as it was.
        """
        # Every attribute a reset touches it replaces (none is changed in place), so the old
        # ones are all it takes to put the run back.
        before = dict(vars(self))
        try:
            self._reset(config, dataset)
        except BaseException:
            vars(self).clear()
            vars(self).update(before)
            raise

    def _reset(self, config: TrainingConfig | None, dataset: Dataset | None) -> None:
        if config is not None:
            self._config = config
        if dataset is not None:
            self._dataset = dataset
        cfg = self._config
        dtype = np.dtype(cfg.dtype)
        self._stats = pixel_statistics(self._dataset.images)
        self._x = scale_pixels(self._dataset.images, cfg.pixel_scaling, dtype, self._stats)
        self._x.flags.writeable = False
        self._y = self._dataset.labels.astype(dtype)
        self._history = History(len(self._dataset), cfg.history_budget_mb * 2**20)
        self._history.log_settings(1, self.settings)
        params = init_params(cfg, self._dataset.size)
        velocity = {key: np.zeros_like(value) for key, value in params.items()}
        self._measured = None
        self._recomputed: StepRecord | None = None
        self._ahead: _Ahead | None = None
        initial = self._evaluate(
            0, params, velocity, None, self.settings, time.perf_counter(), keep=True
        )
        preview = self._advance(initial, 1, self.settings)
        initial = replace(initial, findings=self._initial_findings(initial, preview))
        self._history.append(initial)
        self._latest = initial
        self._first_update_settings = self.settings

    def reseed(self, seed: int | None = None) -> int:
        """Reset with a new seed (drawn from the operating system when None); returns it."""
        if seed is None:
            seed = int(np.random.SeedSequence().entropy % (2**32))
        self.reset(self._config.with_changes(seed=seed))
        return seed

    def update_settings(self, *, predict: bool = True, **changes) -> None:
        """Change live settings (learning rate, momentum, clipping) from the next update on.

        At iteration 0 the findings that predict the first update are made again for the new
        settings (``predict_first_update``), unless ``predict`` is False: a caller that cannot
        wait for a step then calls ``predict_first_update`` itself."""
        not_live = set(changes) - LIVE_FIELDS
        if not_live:
            raise ValueError(f"{', '.join(sorted(not_live))} can only change on reset")
        self._config = self._config.with_changes(**changes)
        self._ahead = None  # computed with the old settings: void, and its memory freed
        self._history.log_settings(self.iteration + 1, self.settings)
        if self.iteration == 0:
            # Iteration 0 goes on with the new settings: its record (snapshots and reports
            # of it) and its metrics row say so, as the first update will.
            initial = self._latest
            metrics = MappingProxyType(
                {**initial.metrics, "learning_rate": self.settings.learning_rate}
            )  # (read-only, as every record's)
            self._latest = replace(initial, settings=self.settings, metrics=metrics)
            # (A prediction made again restates the record itself, its findings with it.)
            if not (predict and self.predict_first_update()):
                self._history.restate(self._latest)

    def predict_first_update(self) -> bool:
        """At iteration 0, make the findings again if the settings the first update will be
        made with changed since they were made ("Pressing Step now will kill the filter", and
        every card's learning-rate fix, must not outlive the rate they were computed with);
        True when it did. It costs a step, which ``step`` then takes as it is."""
        # (Momentum does not change the first update: there is no velocity before it.)
        now, then = self.settings, self._first_update_settings
        if self.iteration != 0 or replace(now, momentum=0.0) == replace(then, momentum=0.0):
            return False
        initial = self._latest
        preview, measured = self._next_update_aside()  # as compute_ahead makes it
        # Every finding of iteration 0 is made again: those of the maps offer a rate too.
        diagnosed = diagnostics.diagnose(
            replace(initial, settings=now), None, self._config, self._dataset.labels
        )
        initial = replace(initial, findings=self._initial_findings(initial, preview, diagnosed))
        self._history.restate(initial)
        self._latest = initial
        self._first_update_settings = self.settings
        self._ahead = _Ahead(initial, self._config, preview, measured)
        return True

    def _initial_findings(
        self, initial: StepRecord, preview: StepRecord, diagnosed: tuple | None = None
    ) -> tuple:
        """The findings of iteration 0: what the setup and ``preview`` of the first update
        show, then ``diagnosed`` (``initial``'s own by default), with one learning rate on
        every card (÷1000 and ÷10 of one rate side by side left a learner to guess)."""
        cfg = self._config
        pretraining = diagnostics.pretraining_check(cfg, initial, preview, self._dataset.labels)
        findings = pretraining + (initial.findings if diagnosed is None else diagnosed)
        return tuple(diagnostics.one_learning_rate(findings, self.settings.learning_rate))

    def step(self) -> StepRecord:
        """One SGD update; returns its record (the one ``compute_ahead`` made, if still valid)."""
        if self.iteration == 0:
            # A prediction left for later (``update_settings(predict=False)``) is made now: it
            # is this very step, kept ahead, so it costs nothing, and iteration 0 never keeps a
            # prediction of a first update other than the one made.
            self.predict_first_update()
        ahead, self._ahead = self._ahead, None
        if ahead is not None and self._is_next(ahead):
            record, self._measured = ahead.record, ahead.measured
        else:
            ahead = None  # void: its buffers go back to the engine before the step needs some
            record = self._next_update()
        self._history.append(record)
        self._latest = record
        return record

    def run(
        self,
        iterations: int,
        *,
        should_stop: Callable[[], bool] | None = None,
        on_step: Callable[[StepRecord], None] | None = None,
        pause_on_findings: bool = True,
    ) -> RunResult:
        """Take up to ``iterations`` steps.

        Stops early when ``should_stop()`` returns True or, with ``pause_on_findings``, at the
        first iteration with a finding that pauses (a filter dying, NaN/inf).
        """
        for done in range(iterations):
            if should_stop is not None and should_stop():
                return RunResult(done, None)
            record = self.step()
            if on_step is not None:
                on_step(record)
            pausing = next((f for f in record.findings if f.pauses), None)
            if pause_on_findings and pausing is not None:
                return RunResult(done + 1, pausing)
        return RunResult(iterations, None)

    def compute_ahead(self) -> None:
        """Compute the next update now, for ``step`` to take without computing it.

        For a caller that is idle until it is asked for the next step (the app's training
        process between two Steps), so that the step is ready when asked for. Nothing visible
        changes: ``step`` takes the record as it is only if the newest record and the config are
        still the ones it was computed from (no step, reset, rewind or change of settings
        since), and it is the very computation ``step`` would make, so its numbers are the
        same, bit for bit. The session holds it (maps included) outside the history's budget
        until then; calling this again while it is valid computes nothing.
        """
        if self._ahead is not None and self._is_next(self._ahead):
            return
        if self.iteration == 0 and self.predict_first_update():
            return  # the prediction left for later is that step, kept ahead
        self._ahead = None
        record, measured = self._next_update_aside()
        self._ahead = _Ahead(self._latest, self._config, record, measured)

    def _next_update_aside(self) -> tuple[StepRecord, tuple | None]:
        """The next update, and the forward pass that measured it (kept for the update after,
        full-batch mode), made without taking the newest record's own pass from it."""
        kept = self._measured
        try:
            return self._next_update(), self._measured
        finally:
            self._measured = kept

    def _next_update(self) -> StepRecord:
        """The next update from the newest record (what ``step`` and ``compute_ahead`` make)."""
        return self._advance(self._latest, self.iteration + 1, self.settings, keep=True)

    def _is_next(self, ahead: _Ahead) -> bool:
        return ahead.previous is self._latest and ahead.config is self._config

    def steps_to_epoch_end(self) -> int:
        """Iterations until the current epoch is complete (a whole epoch at an epoch boundary)."""
        length = self.epoch_length
        return length - self.iteration % length

    def rewind(self, iteration: int) -> StepRecord:
        """Return to ``iteration``; later iterations are forgotten (a new branch starts here)."""
        record = self.record(iteration)
        if record is not self._latest:
            self._ahead = None
        if self._recomputed is not None and self._recomputed.iteration > iteration:
            self._recomputed = None  # that iteration is forgotten; another may take its number
        self._history.truncate_after(iteration)
        # The updates from here on use the settings the session has now, whatever the dropped
        # iterations used: the log says so, and a thinned record is recomputed with them.
        self._history.log_settings(iteration + 1, self.settings)
        self._history.replace(record)
        self._latest = record
        self.predict_first_update()
        return self._latest

    # -- reading the past and the future ---------------------------------------------------

    def record(
        self, iteration: int, *, should_stop: Callable[[], bool] | None = None
    ) -> StepRecord:
        """The complete record of ``iteration``, recomputed exactly if the history thinned it.

        A recomputation replays every update from the checkpoint before ``iteration``; it asks
        ``should_stop()`` before each one and raises ``Interrupted`` when that returns True
        (the window wants the training process for something else).
        """
        if not 0 <= iteration <= self.iteration:
            raise IndexError(f"iteration {iteration} is not in 0..{self.iteration}")
        stored = self._history.stored(iteration)
        if stored is not None:
            return stored if stored.is_complete else self._with_maps(stored)
        recomputed = self._recomputed
        if recomputed is not None and recomputed.iteration == iteration:
            return self._with_maps(recomputed)
        record = start = self._history.latest_restorable(iteration)
        # Each replayed update reuses the forward pass that measured the one before (full-batch
        # mode), as the run did; the newest record's kept pass is put back afterwards.
        latest_measured, self._measured = self._measured, None
        try:
            for k in range(start.iteration + 1, iteration + 1):
                if should_stop is not None and should_stop():
                    raise Interrupted(f"recomputing iteration {iteration} was interrupted")
                record = self._advance(record, k, self._history.settings_at(k), keep=True)
        finally:
            self._measured = latest_measured
        # The last recomputed record is kept (without its maps: the size of a checkpoint,
        # outside the history's budget): the window asks for the iteration it shows, and then
        # often again, to continue from it.
        self._recomputed = strip_maps(record)
        return record

    def preview(self, learning_rate: float | None = None) -> StepRecord:
        """The record the next step would produce (optionally at another learning rate),
        without changing the session."""
        settings = self.settings
        if learning_rate is not None:
            settings = replace(settings, learning_rate=float(learning_rate))
        ahead = self._ahead
        if ahead is not None and self._is_next(ahead) and settings == self.settings:
            return ahead.record  # the same computation, already made (What if's ×1 row)
        return self._advance(self._latest, self.iteration + 1, settings)

    def batch(self, iteration: int) -> np.ndarray:
        """Dataset indices of the update at ``iteration``."""
        return batch_indices(self._config, iteration, len(self._dataset))

    # -- the computation -------------------------------------------------------------------

    def _network_options(self) -> dict:
        """The run's keywords for ``network.forward`` and ``network.loss_and_gradients``."""
        cfg = self._config
        return {
            "activation": cfg.activation,
            "negative_slope": cfg.negative_slope,
            "padding": cfg.padding,
            "threads": self._threads,
        }

    def _forward(self, params, images, labels, *, summarise=False):
        return network.forward(
            params, images, labels, summarise=summarise, **self._network_options()
        )

    def _loss_and_gradients(self, params, images, labels):
        """The batch's mean loss and gradients, which ``network.loss_and_gradients`` may share
        between threads or processes (the maps of a training step are never shown: only the
        measuring pass keeps them)."""
        return network.loss_and_gradients(params, images, labels, **self._network_options())

    def _advance(
        self, previous: StepRecord, iteration: int, settings: OptimSettings, *, keep: bool = False
    ) -> StepRecord:
        """Compute iteration ``iteration`` from ``previous``. Nothing is stored; with ``keep``,
        the forward pass measuring the result is kept for the next update (see
        ``REUSE_FORWARD_MAX_BYTES``)."""
        started = time.perf_counter()
        batch = self.batch(iteration)
        params = dict(previous.params)
        full = self._config.update_mode == "full_batch"
        measured = self._measured
        with np.errstate(over="ignore", invalid="ignore"):
            if full and measured is not None and measured[0] is previous.params:
                fwd = measured[1]  # the same computation: these parameters on every image
                batch_loss, grads = fwd.loss, network.backward(fwd)
            else:
                images, labels = (self._x, self._y) if full else (self._x[batch], self._y[batch])
                batch_loss, grads = self._loss_and_gradients(params, images, labels)
            result = sgd_step(params, grads, previous.velocity, settings)
        return self._evaluate(
            iteration,
            result.params,
            result.velocity,
            previous,
            settings,
            started,
            grads=grads,
            update=result.update,
            batch=tuple(int(i) for i in batch),
            batch_loss=batch_loss,
            clip_scale=result.clip_scale,
            keep=keep,
        )

    def _evaluate(
        self,
        iteration: int,
        params: dict,
        velocity: dict,
        previous: StepRecord | None,
        settings: OptimSettings,
        started: float,
        *,
        grads: dict | None = None,
        update: dict | None = None,
        batch: tuple[int, ...] = (),
        batch_loss: float | None = None,
        clip_scale: float = 1.0,
        keep: bool = False,
    ) -> StepRecord:
        """Measure ``params`` on the whole dataset and build the record of ``iteration``; with
        ``keep``, keep that forward pass for the next update (full-batch mode)."""
        cfg = self._config
        frozen_params = frozen_arrays(params)
        with np.errstate(over="ignore", invalid="ignore"):
            # From the record's own (frozen) parameters, as an update from this record computes.
            fwd = self._forward(dict(frozen_params), self._x, self._y, summarise=True)
            dead_fractions = dead_fraction_per_filter(cfg.activation, fwd.maps)
            metrics = compute_metrics(
                iteration=iteration,
                params=params,
                params_before=None if previous is None else previous.params,
                grads=grads,
                update=update,
                losses=fwd.losses,
                probabilities=fwd.probabilities,
                logits=fwd.logits,
                labels=self._dataset.labels,
                maps=fwd.maps,
                dead_fraction_per_filter=dead_fractions,
                batch_loss=batch_loss,
                settings=settings,
                clip_scale=clip_scale,
                batch=batch,
            )
        dead_since = []
        for f, fraction in enumerate(dead_fractions):
            earlier = None if previous is None else previous.dead_since[f]
            dead_since.append(
                (iteration if earlier is None else earlier) if fraction == 1.0 else None
            )
        if keep:
            small = fwd.activation.nbytes <= REUSE_FORWARD_MAX_BYTES
            keeping = cfg.update_mode == "full_batch" and small
            self._measured = (frozen_params, fwd) if keeping else None
        record = StepRecord(
            iteration=iteration,
            params=frozen_params,
            velocity=frozen_arrays(velocity),
            grads=frozen_arrays(grads),
            update=frozen_arrays(update),
            settings=settings,
            batch=batch,
            batch_loss=batch_loss,
            clip_scale=clip_scale,
            logits=frozen_array(fwd.logits),
            probabilities=frozen_array(fwd.probabilities),
            losses=frozen_array(fwd.losses),
            pre_activation=_frozen_map(fwd.pre_activation),
            activation=_frozen_map(fwd.activation),
            dead_fraction_per_filter=frozen_array(dead_fractions),
            dead_since=tuple(dead_since),
            metrics=MappingProxyType(metrics),
            conv_before=None
            if update is None
            else MappingProxyType({key: previous.params[key] for key in CONV_KEYS}),
        )
        with np.errstate(over="ignore", invalid="ignore"):
            findings = diagnostics.diagnose(
                record,
                previous,
                cfg,
                self._dataset.labels,
                last_calm=lambda: self._last_calm(iteration),
                start=self._start_metrics,
            )
        return replace(record, findings=findings, step_seconds=time.perf_counter() - started)

    def _start_metrics(self) -> dict | None:
        """The metrics of iteration 0, from those kept (None when its row is not)."""
        table = self._history.metrics
        rows = np.flatnonzero(table.column("iteration") == 0)
        if not rows.size:
            return None
        return {name: float(table.column(name)[rows[0]]) for name in METRIC_NAMES}

    def _last_calm(self, iteration: int) -> int:
        """The last iteration before ``iteration`` whose conv update was smaller than its
        weights (iteration 0 has none: calm), from the metrics kept."""
        table = self._history.metrics
        iterations = table.column("iteration")
        ratios = table.column("conv_update_ratio")
        calm = (iterations < iteration) & ~(ratios >= diagnostics.HUGE_UPDATE_RATIO)
        return int(iterations[calm].max()) if calm.any() else 0

    def _with_maps(self, record: StepRecord) -> StepRecord:
        """``record`` with its pre-activation and ReLU maps recomputed from its parameters."""
        with np.errstate(over="ignore", invalid="ignore"):
            fwd = self._forward(dict(record.params), self._x, self._y)
        return replace(
            record,
            pre_activation=_frozen_map(fwd.pre_activation),
            activation=_frozen_map(fwd.activation),
        )
