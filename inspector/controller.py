"""The one object in the window that talks to the training session.

The session lives in a training process of its own (``inspector.training_process``): the
window's drawing never competes with training for Python's interpreter lock. The controller
keeps what the views read (config, dataset, the shown record, a mirror of the metrics table)
and turns the training process's frames into signals at most once per screen frame.

Views never change the session: they call the controller's request slots and redraw from its
signals. Signals are named for what happened:

- ``session_reset(record)``: a new run started (config, data or seed changed); record is
  iteration 0. Views rebuild for new shapes here.
- ``record_shown(record)``: the iteration every view should draw now (the newest while
  following training, or the one picked on the history slider once its record has come from
  the training process: a thinned one is recomputed there, off the GUI thread).
- ``iteration_picked(iteration)``: an earlier iteration was picked (its record follows).
- ``recomputing(iteration)``: the picked iteration's record is still on its way after
  ``SLOW_RECORD_MS`` (the history thinned it and it is being replayed); -1 when that ends.
- ``history_changed(last_iteration)``: iterations were added or dropped (curves, slider).
- ``running_changed(bool)``, ``config_changed(config)``, ``pending_config_changed(config|None)``,
  ``dataset_changed(dataset)``, ``paused_by_finding(finding)``,
  ``error_occurred(title, message, details)``, ``status_message(text)``,
  ``loading_changed(bool)``, ``load_progress(done, total)``.
- ``run_starting(bool)``: a large run is being started, or taken back to an earlier
  iteration, in the background (``BACKGROUND_RESET_VALUES``, ``starting_text``);
  ``is_loading`` is True meanwhile, so training waits for it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QCoreApplication, QEvent, QObject, Qt, QTimer, Signal, Slot
from shiboken6 import delete as shiboken_delete

from inspector.tasks import BackgroundTask
from inspector.training_process import Frame, RunOutcome, TrainerClient, TrainerError
from model.config import LIVE_FIELDS, ConfigError, TrainingConfig
from model.data import (
    Dataset,
    DatasetError,
    LoadCancelled,
    dataset_from_files,
    example_path,
    is_image_list,
    load_dataset,
    load_example,
)
from model.diagnostics import Fix
from model.formatting import format_count
from model.history import MetricsTable
from model.layers import output_size
from model.presets import PRESETS
from model.record import StepRecord
from model.weights_file import WeightsDoNotFit
from model.whatif import WhatIfRow

#: While running, the training process's pipe is looked at this often. It sends 60 frames a
#: second itself; polling at that rate too, two unsynchronised clocks lost one frame in ten.
POLL_MS = 4
#: ... and this often when a speed below 60 iterations a second is set (fewer wake-ups).
SLOW_POLL_MS = 16
#: ... and this often during a Step, whose one frame is drawn as soon as it comes (polling
#: every 4 ms, it waited 2 ms on average before being noticed).
STEP_POLL_MS = 1
DEFAULT_WHAT_IF_FACTORS = (10, 1, 0.1, 0.01, 0.001)
#: A picked iteration whose record takes longer than this to arrive is announced as being
#: recomputed (a kept record arrives within a few milliseconds, a step while running).
SLOW_RECORD_MS = 150
RUN_FOREVER = 2**62
#: How often a worker thread asks whether the report it waits for is written.
REPORT_POLL_SECONDS = 0.05
#: A new run whose maps hold more values than this in all (images × filters × output pixels)
#: is started in the background: the training process takes tenths of a second to seconds to make
#: its iteration 0 (0.8-1.2 s for 200 images of 64×64 with 8 filters, measured in the app),
#: and the window must not freeze meanwhile. A smaller one (the shapes example has 655,360
#: with 8 filters) starts at once, in milliseconds, without the window's actions going off
#: and on.
BACKGROUND_RESET_VALUES = 1_000_000


@dataclass(frozen=True)
class _Fetch:
    """A picked iteration's record being fetched in the background, and from which client."""

    task: BackgroundTask
    iteration: int
    client: TrainerClient


class SessionController(QObject):
    """Drives the training process and tells the views what to draw.

    Parameters
    ----------
    dataset, config : the run to start with.
    source : where the dataset came from ('example:NAME', a folder, or 'files').
    backend : 'process' (default) or 'thread' (the same server in a thread; tests use it to
        reach the session directly as ``controller.server.session``).
    client : a ``TrainerClient`` already started on ``dataset`` and ``config`` (the app starts
        the training process before it loads Qt, so the two start up side by side).
    """

    session_reset = Signal(object)
    record_shown = Signal(object)
    history_changed = Signal(int)
    running_changed = Signal(bool)
    config_changed = Signal(object)
    pending_config_changed = Signal(object)
    dataset_changed = Signal(object)
    paused_by_finding = Signal(object)
    error_occurred = Signal(str, str, str)
    status_message = Signal(str)
    iteration_picked = Signal(int)
    recomputing = Signal(int)
    loading_changed = Signal(bool)
    load_progress = Signal(int, int)
    run_starting = Signal(bool)

    def __init__(
        self,
        dataset: Dataset,
        config: TrainingConfig,
        parent: QObject | None = None,
        *,
        source: str = "example:question",
        backend: str = "process",
        client: TrainerClient | None = None,
    ) -> None:
        super().__init__(parent)
        self._backend = backend
        self._config = config
        self._dataset = dataset
        self._pending: TrainingConfig | None = None
        self._pinned: int | None = None
        self._running = False
        self._stopping = False  # F5 stopped the run, whose last frame is being completed
        self._load_task: BackgroundTask | None = None
        self._aside_task: BackgroundTask | None = None  # a large run starting or going back
        self._loading_announced = False
        self._deferred_live: dict = {}  # live settings changed while a new run starts
        self._deferred_speed: float | None = None  # ... and the speed
        self._starting_text = ("", "")  # what the background work does, and how
        self._fetch: _Fetch | None = None  # the picked iteration's record, on its way
        self._announced = False  # ``recomputing`` was emitted for it
        self._closed = False
        # Reports' work folders (``model.report.new_work_folder``) until the report is written
        # or abandoned: a training process that ends mid-way leaves its half-built report.
        self._report_folders: set[Path] = set()
        self._dataset_source = source
        self._iterations_per_second = 0.0
        self._client = client or TrainerClient(dataset, config, backend)
        self._adopt(*self._client.call("state"))

        self._frame = QTimer(self)
        self._frame.setTimerType(Qt.TimerType.PreciseTimer)
        self._frame.setInterval(POLL_MS)
        self._frame.timeout.connect(self._poll_frames)

        self._slow_fetch = QTimer(self)
        self._slow_fetch.setSingleShot(True)
        self._slow_fetch.setInterval(SLOW_RECORD_MS)
        self._slow_fetch.timeout.connect(self._announce_recomputing)

    def _adopt(self, generation: int, record: StepRecord, rows, history: str) -> None:
        """Take the state the training process reports after starting, a reset or a rewind."""
        self._generation = generation
        self._latest = record
        self._shown = record
        self._history_text = history
        self._metrics = MetricsTable(len(self._dataset))
        self._metrics.extend(*rows)

    @property
    def server(self):
        """The training server, with the 'thread' backend only (for tests)."""
        return self._client.server

    # -- read-only state for views -----------------------------------------------------------

    @property
    def config(self) -> TrainingConfig:
        return self._config

    @property
    def pending_config(self) -> TrainingConfig | None:
        """Settings chosen that need a reset before they take effect."""
        return self._pending

    @property
    def dataset(self) -> Dataset:
        return self._dataset

    @property
    def dataset_source(self) -> str:
        """Where the data came from: 'example:NAME', a folder path, an image list's path (see
        ``model.data.is_image_list``), or 'files'."""
        return self._dataset_source

    @property
    def dataset_path(self) -> Path | None:
        """The folder or image list the data shown came from (a bundled example's folder);
        None for images added one by one."""
        source = self._dataset_source
        if source == "files":
            return None
        if source.startswith("example:"):
            return example_path(source.split(":", 1)[1])
        return Path(source)

    @property
    def is_running(self) -> bool:
        return self._running

    @property
    def is_loading(self) -> bool:
        """True while images load, or a run starts or goes back in the background: no
        training then."""
        return self._load_task is not None or self._aside_task is not None

    @property
    def is_starting(self) -> bool:
        """True while a new run starts, or the run goes back, in the background
        (``run_starting``)."""
        return self._aside_task is not None

    @property
    def starting_text(self) -> tuple[str, str]:
        """What is being done in the background (``is_starting``), and how: ('Starting the new
        run', 'Computing iteration 0 on every image') or ('Going back to iteration 12', ...)."""
        return self._starting_text

    @property
    def shown(self) -> StepRecord:
        """The record the views are showing."""
        return self._shown

    @property
    def latest_iteration(self) -> int:
        return self._latest.iteration

    @property
    def latest(self) -> StepRecord:
        """The newest record of the run (what Step continues from)."""
        return self._latest

    @property
    def following_latest(self) -> bool:
        return self._pinned is None

    @property
    def picked_iteration(self) -> int | None:
        """The iteration picked on the history slider (None while following training); until
        its record arrives, ``shown`` is still the one before."""
        return self._pinned

    @property
    def waiting_for_record(self) -> bool:
        """True while the picked iteration's record is on its way from the training process."""
        return self._pinned is not None and self._pinned != self._shown.iteration

    @property
    def iterations_per_second(self) -> float:
        return self._iterations_per_second

    def metric_columns(self, names) -> dict[str, np.ndarray]:
        """Copies of metric columns (and 'image_losses' (rows, N)) of the whole run so far."""
        table = self._metrics
        columns = {name: table.column(name).copy() for name in names if name != "image_losses"}
        if "image_losses" in names:
            columns["image_losses"] = table.image_losses.copy()
        return columns

    def record(self, iteration: int) -> StepRecord:
        """The complete record of ``iteration`` (recomputed if the history thinned it). Waits
        for it: the window picks iterations with ``show_iteration``, which does not."""
        if iteration == self._latest.iteration:
            return self._latest
        return self._call("record", iteration)

    def complete(self, record: StepRecord) -> StepRecord:
        """``record`` with its momentum buffers, which the records shown while training leave
        out (a snapshot saves them); ``record`` as it is when the training process cannot
        give them."""
        if record.velocity is not None:
            return record
        try:
            velocity = self._call("velocity", record.iteration)
        except TrainerError:
            return record
        return dataclasses.replace(record, velocity=velocity)

    def describe_history(self) -> str:
        """How much of its memory budget the history uses."""
        return self._history_text

    def preview(self, learning_rate: float) -> StepRecord:
        """What the next update would do at ``learning_rate``, without taking it."""
        return self._client.call("preview", learning_rate)

    def what_if(self, factors=DEFAULT_WHAT_IF_FACTORS) -> list[WhatIfRow]:
        """The next update at the current learning rate times each factor, none of them taken
        (``model.whatif``). Safe to call from a worker thread; raises ``TrainerError``."""
        return self._client.call("what_if", factors)

    @property
    def preset_name(self) -> str | None:
        """The preset whose settings are in use, if they are exactly a preset's."""
        return next((name for name, p in PRESETS.items() if p.config == self._config), None)

    def write_report(self, directory, *, plot_pngs=None, as_zip=False, snapshot_iterations=None):
        """Write a shareable report of the run so far (``model.report.write_report``); returns
        its path. The training process takes what the report needs at once and writes it in a
        thread of its own, answering the window and training meanwhile; this waits for it, so
        call it from a worker thread. Raises ``TrainerError``."""
        from model.report import new_work_folder  # (not at start-up: 50 ms of imports)

        client = self._client
        work = new_work_folder(directory)
        self._report_folders.add(work)
        try:
            job = client.call(
                "start_report",
                directory,
                snapshot_iterations=snapshot_iterations,
                plot_pngs=plot_pngs,
                as_zip=as_zip,
                preset=self.preset_name,
                source=self._source_description(),
                work_folder=work,
            )
            while True:
                done, result = client.call("report_result", job, interrupting=False)
                if done:
                    return result
                time.sleep(REPORT_POLL_SECONDS)
        finally:
            self._clear_report_folder(work, client)

    def _clear_report_folder(self, work: Path, client: TrainerClient) -> None:
        """Remove a report's work folder: empty once the report is written or has failed, and
        what a training process that has ended left in it. Not while ``client`` lives, for it
        may still be writing there (a call that failed on a process that hangs): then shutdown
        removes it once the process is gone. (With the tests' 'thread' backend a report thread
        that outlives the server's may still be writing after shutdown: its folder may stay.)"""
        if client.alive:
            with contextlib.suppress(OSError):
                work.rmdir()
        else:
            shutil.rmtree(work, ignore_errors=True)
        if not work.exists():
            self._report_folders.discard(work)

    def _call(self, name: str, *args, **kwargs):
        """A request to the training process from the GUI thread; a failure is reported as
        ``error_occurred`` and re-raised as ``TrainerError``."""
        try:
            return self._client.call(name, *args, **kwargs)
        except TrainerError as exc:
            self._call_failed(exc)
            raise

    def _call_failed(self, exc: TrainerError) -> None:
        self.error_occurred.emit("The training process failed", str(exc), exc.details)
        # During work done aside its own call fails too, and replaces the process once that
        # is over (``_change_failed``), with the data source put back.
        if not self._client.alive and not self.is_starting:
            self._restart()

    def _source_description(self) -> dict[str, str]:
        source = self._dataset_source
        if source.startswith("example:"):
            return {"example": source.split(":", 1)[1]}
        if source == "files":
            return {"files": "added one by one"}
        return {"list": source} if is_image_list(source) else {"folder": source}

    # -- training -----------------------------------------------------------------------------

    @Slot()
    def step(self) -> None:
        """One iteration (F10)."""
        self._start(1, pause_on_findings=False)

    @Slot()
    def step_epoch(self) -> None:
        """Iterations to the end of the current epoch."""
        if self._running or self.is_loading:
            return
        with contextlib.suppress(TrainerError):  # reported by _call
            self._start(self._call("steps_to_epoch_end"), pause_on_findings=True)

    @Slot()
    def run(self) -> None:
        """Train until paused, or until a finding pauses the run (F5)."""
        self._start(RUN_FOREVER, pause_on_findings=True)

    def run_steps(self, steps: int) -> None:
        """Take ``steps`` iterations without pausing on findings (a compared run catching up)."""
        self._start(steps, pause_on_findings=False)

    @Slot()
    def pause(self) -> None:
        """Stop training after the step in progress; the run has ended when this returns, its
        last iteration shown."""
        self._stop(complete=True)

    def _stop(self, *, complete: bool) -> None:
        """Stop the run; without ``complete``, the run ends with its last frame at a later
        ``_poll_frames`` (the window answers meanwhile): the training process stops after the
        step in progress, and a last frame with large maps is completed on another thread."""
        if not self._running:
            return
        answered, ended = False, None
        try:
            if complete:
                ended = self._client.call("stop")
                answered = True
            else:
                self._client.ask("stop")
        except TrainerError as exc:
            self._call_failed(exc)
        if self._running:  # (not if the process was restarted)
            self._poll_frames(complete=answered)
        if answered and self._running and ended is None:
            # The training process had no run left, and no last frame ended this one (it
            # was lost): end it here rather than stay "running" for good.
            self._finish(RunOutcome(0, stopped=True))

    @Slot()
    def toggle_run(self) -> None:
        """Run, or pause a run (F5). Pausing does not wait (``pause`` does): the training
        process stops after the step in progress, and the run ends with its last frame, whose
        large maps are completed on another thread. Meanwhile the button still says Pause,
        and pressing it again only says that the run is stopping."""
        if not self._running:
            self.run()
        elif not self._stopping:
            self._stop(complete=False)
            self._stopping = self._running
        else:
            self.status_message.emit("Stopping after the step in progress")

    @Slot(float)
    def set_speed(self, iterations_per_second: float) -> None:
        """Iterations per second while running; 0 for as fast as possible."""
        if not math.isfinite(iterations_per_second) or iterations_per_second < 0:
            raise ValueError(f"speed must be 0 or positive, got {iterations_per_second}")
        if self.is_starting:  # the training process is busy: it gets it once the run is made
            self._deferred_speed = float(iterations_per_second)
            self._iterations_per_second = float(iterations_per_second)
            return
        with contextlib.suppress(TrainerError):  # reported by _call
            self._call("speed", float(iterations_per_second))
            self._iterations_per_second = float(iterations_per_second)
            self._frame.setInterval(self._poll_ms())

    def _poll_ms(self) -> int:
        slow = 0 < self._iterations_per_second < 60
        return SLOW_POLL_MS if slow else POLL_MS

    def _start(self, steps: int, *, pause_on_findings: bool) -> None:
        if self._running or steps <= 0 or self.is_loading:
            return
        pinned = self._pinned
        if pinned is not None:
            self.follow_latest()
        try:
            self._call("run", steps, pause_on_findings)
        except TrainerError:
            return  # reported by _call
        if pinned is not None and pinned < self.latest_iteration:
            # A teacher back at iteration 1 to explain it pressed Step, and the run went on
            # from 15,419 without a word.
            self.status_message.emit(
                f"Went on from the latest iteration, {self.latest_iteration:,}, not from "
                f"iteration {pinned:,} shown (Continue from here trains on from the one shown)"
            )
        self._running = True
        self.running_changed.emit(True)
        # A Step's one frame comes as soon as its iteration is done: look often, whatever the
        # speed (at 16 ms it could wait that long more).
        self._frame.start(STEP_POLL_MS if steps == 1 else self._poll_ms())

    @Slot()
    def _poll_frames(self, complete: bool = False) -> None:
        """Take the training process's frames (it sends 60 a second on average), show the newest
        record (unless an earlier iteration is pinned on the history slider), and end the run
        when its last frame says so. A frame with large maps is completed on another thread
        and comes at a later poll; ``complete`` waits for it (``TrainerClient.frames``)."""
        outcome = None
        newest: Frame | None = None
        frames = self._client.frames(complete=complete)
        for iteration, error, details in self._client.take_failures():
            what = (
                "A frame could not be read from the training process"
                if iteration is None
                else f"The maps of iteration {iteration:,} could not be copied out of the "
                "training process"
            )
            self.error_occurred.emit(
                "An iteration could not be shown",
                f"{what} ({error}); the views show an earlier iteration.",
                details,
            )
        for frame in frames:
            if frame.generation != self._generation:
                continue  # sent before a reset or rewind
            self._metrics.extend(*frame.rows)
            outcome = frame.outcome or outcome
            if frame.shared is None:  # else a newer frame came with it, or its block was gone
                newest = frame
        if newest is not None:
            self._metrics.fit(self._config.history_budget_mb * 2**20 // 2)
            self._latest = newest.record
            self._history_text = newest.history
            self.history_changed.emit(newest.record.iteration)
            if self._pinned is None:
                self._show(newest.record)
        if outcome is not None:
            self._finish(outcome)
        elif self._running and not self._client.alive:
            self._finish(RunOutcome(0, error=("the training process stopped unexpectedly", "")))
            self._restart()

    def _finish(self, outcome: RunOutcome) -> None:
        self._frame.stop()
        self._running = False
        self._stopping = False
        self.running_changed.emit(False)
        if outcome.error is not None:
            self.error_occurred.emit("Training stopped", *outcome.error)
        if outcome.paused_by is not None:
            self.paused_by_finding.emit(outcome.paused_by)
            self.status_message.emit(
                f"Paused at iteration {self.latest_iteration}: {outcome.paused_by.title}"
            )

    def _ensure_paused(self) -> None:
        """Stop a run and take its last frame, so that the views and the session agree."""
        self.pause()

    def _restart(self) -> None:
        """Start a new training process after the old one died, from iteration 0 of the same
        settings and data (nothing else can be recovered from a dead process).

        Its iteration 0 is made as a new run's is: in the background on a large run
        (``_change_run``). A new process that cannot make it is reported, and not replaced
        again until the next request finds it gone."""
        self._client.close(timeout=1.0)
        self._client = TrainerClient(self._dataset, self._config, self._backend)
        self._frame.stop()
        self._stopping = False
        if self._running:
            self._running = False
            self.running_changed.emit(False)

        def restarted(state) -> None:
            if self._closed:
                return
            self._adopt(*state)
            try:
                self._client.call("speed", self._iterations_per_second)
            except TrainerError as exc:  # it died again: say so; the next request replaces it
                failed(exc)
            else:
                self._apply_deferred()
                self.status_message.emit("Training restarted from iteration 0")
            self._announce_reset(dataset_changed=False)

        def failed(exc: Exception) -> None:
            self._change_failed(exc, title="Could not restart training", replace_dead=False)

        self._change_run(
            ("state",),
            restarted,
            failed,
            _map_values(self._config, self._dataset),
            "Restarting training",
            "The training process stopped; computing iteration 0 on every image again",
        )

    # -- history ------------------------------------------------------------------------------

    @Slot(int)
    def show_iteration(self, iteration: int) -> None:
        """Show ``iteration`` in every view (the newest one means: follow training again).

        The record comes from the training process in the background: a thinned iteration is
        recomputed there by replaying updates, seconds for a large model, and the window must
        not wait for it. Views draw it when it arrives (``record_shown``); a newer pick before
        then interrupts that recomputation, and only the newest pick is shown.
        """
        last = self.latest_iteration
        iteration = max(0, min(int(iteration), last))
        if iteration == last and not self._running:
            self.follow_latest()
            return
        self._pinned = iteration
        self.iteration_picked.emit(iteration)
        if iteration == last:
            self._show(self._latest)
        self._fetch_picked()

    def _fetch_picked(self) -> None:
        """Ask for the picked iteration's record unless it is shown or already asked for; a
        request for another iteration is interrupted first (and this runs again when it ends)."""
        wanted = self._pinned
        if self._fetch is not None:
            if self._fetch.iteration != wanted:
                self._fetch.client.interrupt()
            return
        if wanted is None or wanted == self._shown.iteration or self._closed or self.is_starting:
            return
        client, generation = self._client, self._generation
        # Taken here, on the GUI thread: any interruption from now on counts against it.
        interruptions = client.interruptions
        task = BackgroundTask(
            lambda progress, cancelled: client.record_unless_interrupted(wanted, interruptions),
            self,
        )
        fetch = _Fetch(task, wanted, client)
        self._fetch = fetch
        task.done.connect(lambda record: self._on_fetched(record, client, generation))
        task.failed.connect(
            lambda exc, details: self._on_fetch_failed(exc, details, fetch, generation)
        )
        task.ended.connect(self._on_fetch_ended)
        self._slow_fetch.start()
        task.start()

    def _announce_recomputing(self) -> None:
        if self._fetch is not None:
            self._announced = True
            self.recomputing.emit(self._fetch.iteration)

    def _current(self, client: TrainerClient, generation: int | None = None) -> bool:
        """Whether a reply from ``client`` (in ``generation``) is about the run on screen: not
        after a reset or rewind, nor from a training process that died and was replaced."""
        if self._closed or client is not self._client:
            return False
        return generation is None or generation == self._generation

    def _on_fetched(self, record: StepRecord | None, client: TrainerClient, generation: int):
        # None: interrupted. A record of another run or pick is not wanted any more.
        picked = record is not None and record.iteration == self._pinned
        if picked and self._current(client, generation):
            self._show(record)

    def _on_fetch_failed(
        self, exc: Exception, details: str, fetch: _Fetch, generation: int
    ) -> None:
        client = fetch.client
        if not self._current(client, generation) or self.is_starting:
            # The process that failed was replaced (and that was reported), or the request
            # was about a run that another has replaced since.
            return
        if self._pinned == fetch.iteration:
            # Back to what the views show (the slider too); a newer pick stays.
            self._pinned = None if self._shown is self._latest else self._shown.iteration
            self._show(self._shown)
        if isinstance(exc, TrainerError):
            self.error_occurred.emit("The training process failed", str(exc), exc.details)
            if not client.alive:
                self._restart()
        else:
            self.error_occurred.emit("Could not show that iteration", str(exc), details)

    def _on_fetch_ended(self) -> None:
        fetch, self._fetch = self._fetch, None
        if fetch is not None:
            fetch.task.deleteLater()
        self._slow_fetch.stop()
        self._fetch_picked()
        if self._announced and self._fetch is not None:
            self.recomputing.emit(self._fetch.iteration)  # the next one, without a flicker
        elif self._announced:
            self._announced = False
            self.recomputing.emit(-1)

    @Slot()
    def follow_latest(self) -> None:
        self._pinned = None
        self._show(self._latest)
        self._fetch_picked()

    @Slot()
    def continue_from_shown(self) -> None:
        """Branch: forget the iterations after the shown one and continue from it."""
        self.rewind_to(self._shown.iteration)

    def rewind_to(self, iteration: int) -> None:
        """Return the run to ``iteration``; later iterations are dropped."""
        if self._busy():
            return
        self._ensure_paused()
        # It may replay up to a checkpoint interval of updates: seconds on a large run.
        self._change_run(
            ("rewind", iteration),
            lambda state: self._finish_rewind(state, iteration),
            lambda exc: self._change_failed(exc, title="The training process failed"),
            _map_values(self._config, self._dataset),
            f"Going back to iteration {iteration}",
            "Replaying the updates from the checkpoint before it",
        )

    def _finish_rewind(self, state, iteration: int) -> None:
        if self._closed:
            return
        self._adopt(*state)
        self._apply_deferred()
        self._pinned = None
        self.history_changed.emit(iteration)
        self._show(self._latest)
        self.status_message.emit(f"Continuing from iteration {iteration}; later iterations dropped")

    def _show(self, record: StepRecord) -> None:
        self._shown = record
        self.record_shown.emit(record)

    def _busy(self) -> bool:
        """True (and says so) while the training process makes a run aside: a request that
        would start, replace or go back from that run has to wait until it is there."""
        if self.is_starting:
            what = self._starting_text[0]
            self.status_message.emit(f"{what} is still under way; try again in a moment")
        return self.is_starting

    # -- settings -----------------------------------------------------------------------------

    def request_config(self, config: TrainingConfig) -> None:
        """Take new settings. Live ones (learning rate, momentum, clipping) apply from the next
        iteration; any other difference is kept as the pending config for Reset (announced by
        ``pending_config_changed``). A config that differs only in live settings clears
        whatever was pending."""
        changes = self._live_changes(config)
        if changes:
            self._update_settings(changes)
        if self._config.needs_reset(config) and self._busy():
            return  # the run being made would clear a pending config anyway
        self._set_pending(config if self._config.needs_reset(config) else None)

    def _live_changes(self, config: TrainingConfig) -> dict:
        """The live settings (``LIVE_FIELDS``) in which ``config`` differs from the one in use."""
        return {
            name: getattr(config, name)
            for name in LIVE_FIELDS
            if getattr(config, name) != getattr(self._config, name)
        }

    def _update_settings(self, changes: dict) -> None:
        if self.is_starting:
            # The training process is busy making the new run; they apply once it is made.
            self._deferred_live.update(changes)
            self._config = self._config.with_changes(**changes)
            self.config_changed.emit(self._config)
            return
        # At iteration 0 the training process predicts the first update again with the new
        # settings (the findings say what Step will do). That is a step's work: on a large run
        # it is done aside, once the window has had the new settings.
        large = _map_values(self._config, self._dataset) > BACKGROUND_RESET_VALUES
        try:
            config, record = self._call("update_settings", changes, predict=not large)
        except TrainerError:
            return
        self._config = config
        self._show_predicted(record)
        self.config_changed.emit(self._config)
        if large and self.latest_iteration == 0:
            QTimer.singleShot(0, self._predict_aside)

    def _show_predicted(self, record: StepRecord | None) -> None:
        """Take iteration 0's record with its settings, and its predictions of the first
        update, made again."""
        if record is not None and record.iteration == self.latest_iteration == 0:
            self._latest = record
            if len(self._metrics) and self._metrics.iterations[-1] == 0:
                self._metrics.replace_last(record)  # (its learning rate)
            if self._pinned is None:
                self._show(record)

    def _predicted_aside(self, record: StepRecord | None) -> None:
        if self._closed:
            return
        self._show_predicted(record)
        # Settings changed while it was made wait in _deferred_live (the run was busy): sent
        # now, they make their own prediction.
        self._apply_deferred()

    def _predict_aside(self) -> None:
        if self._closed or self.is_starting or self._running or self.latest_iteration != 0:
            return  # (a Step or a new run since: it made its own)
        self._change_run(
            ("predict_first_update",),
            self._predicted_aside,
            lambda exc: self._change_failed(exc, title="The training process failed"),
            _map_values(self._config, self._dataset),
            "Predicting the first update",
            "With the new settings, before the first Step",
        )

    def update_live(self, **changes) -> None:
        """Change live settings (learning rate, momentum, clipping) of the running session from
        the next iteration on, and of the pending config too if there is one."""
        self._update_settings(changes)
        if self._pending is not None:
            self._set_pending(self._pending.with_changes(**changes))

    @Slot(str)
    def apply_preset(self, name: str) -> None:
        """Choose a preset's settings; all of them, the learning rate included, wait for Reset
        (the running iterations keep the settings they were started with)."""
        if self._busy():
            return
        config = PRESETS[name].config
        self._set_pending(config if config != self._config else None)

    def _set_pending(self, config: TrainingConfig | None) -> None:
        if config != self._pending:
            self._pending = config
            self.pending_config_changed.emit(config)

    def apply_fix(self, fix: Fix) -> None:
        """Carry out a suggested fix: rewind if it says so, then change settings (resetting the
        run when a setting needs new weights)."""
        if self._busy():
            return
        self._ensure_paused()
        try:
            config = self._config.with_changes(**fix.changes)
        except ConfigError as exc:
            self.error_occurred.emit("Fix not applied", str(exc), "")
            return
        if fix.needs_reset:
            self._pending = config
            if self._reset(config=config):
                # ("Applied: Apply the answer's whole fix…" said it twice: a teacher's review.)
                said = fix.label.removeprefix("Apply ")
                self.status_message.emit(
                    f"Applied {said}" if said != fix.label else f"Applied: {fix.label}"
                )
            return
        going_back = fix.rewind_to is not None and fix.rewind_to <= self.latest_iteration
        if going_back:
            self.rewind_to(fix.rewind_to)
        # Live settings only: they join settings waiting in Setup for Reset rather than
        # clearing them (as taking the whole config did, without a word: a review).
        changes = self._live_changes(config)
        if changes:
            self.update_live(**changes)
        # Not going back, it applies from the run's next update on, whichever iteration the
        # cards were shown of (one picked on the history slider is not where it applies).
        where = "" if going_back else f" from iteration {self.latest_iteration + 1} on"
        self.status_message.emit(f"Applied{where}: {fix.label}")

    @Slot()
    def reset(self) -> None:
        """Start the run again from iteration 0, with any pending settings."""
        self._ensure_paused()
        config = self._pending or self._config
        if self._reset(config=config) and not self.is_starting:
            # (A large run says "Starting the new run…" meanwhile.) Replaces what the status
            # bar said of the run before ("Continuing from iteration 100…").
            self.status_message.emit("Started again from iteration 0")

    @Slot()
    def reseed(self) -> None:
        """Reset with a new random seed."""
        self._ensure_paused()
        seed = int(np.random.SeedSequence().entropy % (2**32))
        config = (self._pending or self._config).with_changes(seed=seed)
        if self._reset(config=config):
            self.status_message.emit(f"New seed: {seed}")

    def start_over(self, config: TrainingConfig, dataset: Dataset | None = None, source=None):
        """A new run with ``config`` (and ``dataset`` from ``source``, when given)."""
        self._ensure_paused()
        restore_source = self._source_restorer()
        if dataset is not None and source is not None:
            self._dataset_source = source
        return self._reset(config=config, dataset=dataset, on_failure=restore_source)

    def _source_restorer(self):
        """A function that puts the data source back as it is now (when new data fails)."""
        previous = self._dataset_source

        def restore() -> None:
            self._dataset_source = previous

        return restore

    def _reset(
        self,
        *,
        config: TrainingConfig | None = None,
        dataset: Dataset | None = None,
        on_failure=None,
    ) -> bool:
        """Start a new run; False when it could not start (``on_failure`` is called then too).

        A large run starts in the background (``BACKGROUND_RESET_VALUES``): True means it is
        on its way, and the views change when it is there (``session_reset``)."""
        if self._busy():
            if on_failure is not None:
                on_failure()
            return False
        new_config, new_dataset = config or self._config, dataset or self._dataset
        try:  # refused here, in words, not sent for the training process to fail on
            new_config.map_size(new_dataset.size)
        except ValueError as exc:
            text = str(exc)
            how = (
                " Clear the weights file (Setup → Initial weights) to draw the weights instead."
                if isinstance(exc, WeightsDoNotFit)
                else ""
            )
            self.error_occurred.emit(
                "Could not start the run", f"{text[0].upper()}{text[1:]}.{how}", ""
            )
            if on_failure is not None:
                on_failure()
            return False
        return self._change_run(
            ("reset", config, dataset),
            lambda state: self._finish_reset(state, config, dataset),
            lambda exc: self._change_failed(exc, on_failure),
            _map_values(new_config, new_dataset),
            "Starting the new run",
            "Computing iteration 0 on every image",
        )

    def _change_run(
        self, request: tuple, finish, fail, values: int, what: str, detail: str
    ) -> bool:
        """Send ``request`` (name, *args) that starts the run anew or takes it back, then
        ``finish(result)`` or ``fail(exception)``; False when it failed at once.

        For a run whose maps hold at most ``BACKGROUND_RESET_VALUES`` ``values`` it is done at
        once. A larger one is done from a background thread, the training process taking long:
        meanwhile ``is_starting`` (training waits), and ``run_starting`` lets the window say
        ``what`` (and ``detail``) is being done."""
        if values <= BACKGROUND_RESET_VALUES:
            try:
                result = self._client.call(*request)
            except TrainerError as exc:
                fail(exc)
                return False
            finish(result)
            return True
        client = self._client
        # An iteration picked on the history slider belongs to the run being replaced.
        self._pinned = None
        if self._fetch is not None:
            self._fetch.client.interrupt()
        task = BackgroundTask(lambda _progress, _cancelled: client.call(*request), self)
        self._aside_task = task
        self._starting_text = (what, detail)
        outcome: list = []  # ("done", result) or ("failed", exception), handled at the end
        task.done.connect(lambda result: outcome.append(("done", result)))
        task.failed.connect(lambda exc, _details: outcome.append(("failed", exc)))
        task.ended.connect(lambda: self._on_aside_ended(client, outcome, finish, fail))
        self._announce_loading()
        self.run_starting.emit(True)
        self.status_message.emit(f"{what}…")
        task.start()
        return True

    def _finish_reset(self, state, config: TrainingConfig | None, dataset: Dataset | None):
        if self._closed:
            return
        if config is not None:
            self._config = config
        if dataset is not None:
            self._dataset = dataset
        self._adopt(*state)
        self._apply_deferred()
        self._announce_reset(dataset_changed=dataset is not None)

    def _change_failed(
        self,
        exc: Exception,
        on_failure=None,
        title: str = "Could not start the run",
        *,
        replace_dead: bool = True,
    ) -> None:
        """Report a start, rewind or restart that failed; a training process that died
        doing it is replaced (unless it was itself the replacement: ``replace_dead``)."""
        if self._closed:
            return
        details = getattr(exc, "details", "")
        self.error_occurred.emit(title, str(exc), details)
        if on_failure is not None:
            on_failure()
        if replace_dead and isinstance(exc, TrainerError) and not self._client.alive:
            self._restart()

    def _on_aside_ended(self, client, outcome: list, finish, fail) -> None:
        task, self._aside_task = self._aside_task, None
        if task is not None:
            task.deleteLater()
        if self._closed:
            return
        # No longer starting before the new run is announced: its views and a compared run
        # may step it at once.
        self.run_starting.emit(False)
        self._announce_loading()
        if client is self._client:  # (not replaced meanwhile: see _call)
            for kind, result in outcome:
                (finish if kind == "done" else fail)(result)
        if not any(kind == "done" for kind, _ in outcome):
            # Failed: what was asked meanwhile applies to the run there is, shown as it is. A
            # training process that is gone gets it when it is replaced (its config and speed
            # here already hold it): sending it now would only replace it again, unasked.
            if self._client.alive:
                self._apply_deferred()
            else:
                self._deferred_live, self._deferred_speed = {}, None
            self.follow_latest()

    def _apply_deferred(self) -> None:
        """Send the live settings and speed changed during work done aside (before the run
        it made is announced, so that nothing steps it with the old ones)."""
        deferred, self._deferred_live = self._deferred_live, {}
        if deferred:
            self._update_settings(deferred)
        speed, self._deferred_speed = self._deferred_speed, None
        if speed is not None:
            self.set_speed(speed)

    def _announce_loading(self) -> None:
        """``loading_changed`` when ``is_loading`` changed since it was last announced."""
        if self.is_loading != self._loading_announced:
            self._loading_announced = self.is_loading
            self.loading_changed.emit(self._loading_announced)

    def _announce_reset(self, *, dataset_changed: bool) -> None:
        self._pending = None
        self._pinned = None
        self.pending_config_changed.emit(None)
        self.config_changed.emit(self._config)
        if dataset_changed:
            self.dataset_changed.emit(self._dataset)
        self.session_reset.emit(self._shown)
        self.history_changed.emit(self.latest_iteration)
        self.record_shown.emit(self._shown)

    # -- data ---------------------------------------------------------------------------------

    def set_dataset(self, dataset: Dataset, source: str) -> bool:
        """Use ``dataset`` (a new run starts, with any pending settings)."""
        self._ensure_paused()
        config = self._pending or self._config
        restore_source = self._source_restorer()
        self._dataset_source = source
        return self._reset(config=config, dataset=dataset, on_failure=restore_source)

    @Slot(str)
    def load_example(self, name: str) -> None:
        self._load(lambda progress, cancelled: load_example(name), f"example:{name}")

    @Slot(str)
    def load_folder(self, path: str) -> None:
        """Load a labeled folder (two sub-folders) in the background."""
        self._load(
            lambda progress, cancelled: load_dataset(
                path, size=None, progress=progress, cancel=cancelled
            ),
            str(Path(path).resolve()),
        )

    def add_files(self, paths: list[str], label: int) -> None:
        """Add image files with ``label`` to the current dataset (resized to its size)."""
        current = self._dataset
        names = current.class_names

        def job(progress, cancelled):
            added = dataset_from_files(
                [(p, label) for p in paths],
                size=current.size,
                class_names=names,
                progress=progress,
                cancel=cancelled,
            )
            return current.extended(added)

        self._load(
            job, "files" if self._dataset_source.startswith("example") else self._dataset_source
        )

    def set_label(self, index: int, label: int) -> None:
        self.set_labels([index], label)

    def set_labels(self, indices, label: int) -> None:
        """Give every image of ``indices`` the label ``label`` (one new run)."""

        def relabel(dataset):
            for index in indices:
                dataset = dataset.with_label(index, label)
            return dataset

        self._change_data(relabel)

    def remove_images(self, indices) -> None:
        self._change_data(lambda d: d.without(list(indices)))

    def _change_data(self, change) -> None:
        try:
            dataset = change(self._dataset)
        except (DatasetError, IndexError, ValueError) as exc:
            self.error_occurred.emit("Data not changed", str(exc), "")
            return
        self.set_dataset(dataset, self._dataset_source)

    @Slot()
    def cancel_loading(self) -> None:
        if self._load_task is not None:
            self._load_task.cancel()

    def _load(self, job, source: str) -> None:
        if self._load_task is not None:
            self.status_message.emit("Already loading; cancel that first")
            return
        if self._busy():
            return
        task = BackgroundTask(job, self)
        self._load_task = task
        task.progress.connect(self.load_progress)
        task.done.connect(lambda dataset: self._on_loaded(dataset, source))
        task.failed.connect(self._on_load_failed)
        task.cancelled.connect(lambda: self.status_message.emit("Loading cancelled"))
        task.ended.connect(self._on_load_ended)
        self._announce_loading()
        task.start()

    def _on_loaded(self, dataset: Dataset, source: str) -> None:
        if self._closed:
            # Delivered by shutdown (the load ended as the window closed): a new run now
            # would start on a training process that is gone.
            return
        if self.set_dataset(dataset, source):
            skipped = len(dataset.skipped)
            note = (
                f"; {format_count(skipped, 'file')} skipped (see the Data panel)" if skipped else ""
            )
            self.status_message.emit(f"Loaded {len(dataset)} images{note}")

    def _on_load_failed(self, exc: Exception, details: str) -> None:
        if isinstance(exc, LoadCancelled):
            self.status_message.emit("Loading cancelled")
        elif isinstance(exc, (DatasetError, ValueError, OSError)):
            self.error_occurred.emit("Could not load the images", str(exc), "")
        else:
            self.error_occurred.emit(
                "Could not load the images", f"{type(exc).__name__}: {exc}", details
            )

    def _on_load_ended(self) -> None:
        task, self._load_task = self._load_task, None
        if task is not None:
            task.deleteLater()
        self._announce_loading()

    # -- shutdown -----------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop training and background work and end the training process (on window close)."""
        self._closed = True
        self._frame.stop()
        self._slow_fetch.stop()
        if self._load_task is not None:
            self._load_task.cancel()
            self._load_task.wait()
        if self._aside_task is not None:
            # Leaving while a run is made aside: it is not wanted any more, and a training
            # process that hangs must not hold the window for the call's whole time-out.
            self._client.terminate()
        self._client.close()  # interrupts a record being recomputed
        for work in list(self._report_folders):
            self._clear_report_folder(work, self._client)
        tasks = [t for t in (self._aside_task, self._load_task) if t is not None]
        if self._fetch is not None:
            tasks.append(self._fetch.task)
        for task in tasks:
            task.wait()
        if tasks:
            # Their results are queued to this thread: delivered now, while this controller
            # exists (its handlers see it closed), not later to what is left of it. (Left
            # pending, a record fetched for a picked iteration crashed the process in the
            # next event processing.)
            QCoreApplication.sendPostedEvents()
            # And their deleteLater() (in the handlers just run) done now, while their parent
            # lives: deleted later with it, a task crashed the process ("shared QObject was
            # deleted directly").
            QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        # Tasks that ended before (deleted later, not yet done) go now too, while whoever
        # called this holds the controller: their handlers' closures hold it as well, and a
        # controller dropped after shutdown was then deleted from inside such a task's
        # deletion, which deleted the task a second time (a crash in the tests).
        # (A task still running after its wait ends as cancelled: ``tasks.BackgroundTask``.)
        direct = Qt.FindChildOption.FindDirectChildrenOnly
        for task in self.findChildren(BackgroundTask, options=direct):
            shiboken_delete(task)  # (a live child; tasks own no tasks)
        self._load_task = self._aside_task = self._fetch = None


def _map_values(config: TrainingConfig, dataset: Dataset) -> int:
    """Values in the maps of a run of ``config`` on ``dataset``: images × filters × output
    pixels; 0 when the kernel does not fit the images (a new run is refused before: ``_reset``)."""
    try:
        height, width = output_size(*dataset.size, config.kernel_size, config.padding)
    except ValueError:
        return 0
    return len(dataset) * config.num_filters * height * width
