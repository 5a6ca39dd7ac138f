"""Training in a process of its own, so the window and the training never share one interpreter.

In one process the window's drawing and the training steps take turns on Python's global
interpreter lock: at 60 frames a second the window takes most of it and a small model trains
at a third of its speed. Here a ``TrainerServer`` owns the ``TrainingSession`` in a child
process (started with 'spawn': the window's process has Qt threads, so it must never fork)
and the window talks to it through a ``TrainerClient``:

- requests and replies on one pipe: any ``TrainingSession`` operation the window needs
  (record of an iteration, reset, rewind, settings, previews, reports), answered between two
  training steps while a run goes on, one at a time. A request that has to wait for another
  counts an interruption (``TrainerClient.interrupt``); a recomputation of a thinned record
  asked for from a background thread (``record_unless_interrupted``) gives way, within one
  replayed update, to any interruption counted after it was asked for;
- frames on another: while running, one every ``FRAME_INTERVAL`` on average, the newest record, the
  metric rows added since the last frame and the history's memory use; the last frame of a run
  says how it ended.

Nothing here imports Qt. ``backend="thread"`` runs the same server in a thread of the calling
process instead (for tests that inject faults into the session, and where processes cannot be
started).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import dataclasses
import itertools
import math
import multiprocessing
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import shared_memory
from types import MappingProxyType

import numpy as np

from model.blas import single_threaded_blas
from model.config import ConfigError, TrainingConfig
from model.data import Dataset
from model.diagnostics import Finding
from model.history import describe_budget
from model.layers import activation_forward
from model.record import ARRAY_GROUPS, StepRecord
from model.session import Interrupted, TrainingSession

#: Seconds between two frames while training (60 frames a second).
FRAME_INTERVAL = 1 / 60
#: Seconds a request may take before the training process is presumed dead or hung.
CALL_TIMEOUT = 600.0
#: Seconds the training process waits, when asked to quit, for reports still being written.
REPORT_FINISH_SECONDS = 30.0
#: Idle for this long (seconds), the training process computes the next step ahead, so that a
#: Step is drawn without waiting for it (``TrainingSession.compute_ahead``); not sooner, so that
#: a series of changes (a spin box stepped, settings typed) does not compute a step after each.
AHEAD_AFTER_IDLE = 0.1
#: ... if a step takes at most this long (seconds): a request that comes meanwhile waits for it.
AHEAD_MAX_SECONDS = 0.05


class TrainerError(RuntimeError):
    """A request failed in the training process; ``details`` holds its traceback.

    ``refused``: it failed for a reason that says itself, a file that could not be written or
    a setting refused (an ``OSError`` or ``ConfigError`` there), and ``text`` says it without the
    exception's name, for a person."""

    def __init__(
        self, message: str, details: str = "", *, text: str = "", refused: bool = False
    ) -> None:
        super().__init__(message)
        self.details = details
        self.text = text or message
        self.refused = refused


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended: steps taken, the finding that paused it, whether it was stopped, and
    the error (message, traceback) that ended it, if any."""

    steps: int
    paused_by: Finding | None = None
    stopped: bool = False
    error: tuple[str, str] | None = None


#: Arrays of a record's parameter groups from this size on travel in shared memory with its
#: maps (``ArraySlots``): the classifier's weights, gradient and update, one per ReLU output.
SHARED_MIN_BYTES = 32 * 2**10
#: A frame whose arrays take this many bytes or more to put back (``SharedRef.restored_bytes``)
#: is completed on a thread of its own, not the window's: with 3,000 images of 32×32 and 8
#: filters a frame's maps are 400 MB, and copying them out stopped the window for half a second
#: to a second at every frame. Smaller ones (8 MB with 16 images × 16 filters of 64×64) are
#: completed at once, as they come.
BACKGROUND_RESTORE_BYTES = 32 * 2**20
#: Seconds a run's last frame waits for a free slot before its maps go through the pipe.
FINAL_SLOT_WAIT = 5.0


@dataclass(frozen=True)
class SharedArray:
    """One array of a record waiting in shared memory: ``field`` of the record, ``key`` in that
    field's mapping (None for the maps), where in the block, its shape and dtype."""

    field: str
    key: str | None
    offset: int
    shape: tuple[int, ...]
    dtype: str

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


@dataclass(frozen=True)
class SharedRef:
    """Where a frame's large arrays wait in shared memory: a slot of a block; ``orders`` the
    keys, in order, of each group that lost arrays (``(field, keys)``); ``activation`` the
    activation (name, negative slope) that made the output map from the pre-activation, when
    the output was left out to be made again the same way (see ``ArraySlots.put``)."""

    block: str
    slot: int
    arrays: tuple[SharedArray, ...]
    orders: tuple[tuple[str, tuple[str, ...]], ...] = ()
    activation: tuple[str, float] | None = None

    def restored_bytes(self) -> int:
        """Bytes that ``restore`` writes: the arrays' copies, and the output map made again."""
        total = sum(entry.nbytes for entry in self.arrays)
        if self.activation is not None and self.activation[0] != "identity":
            total += sum(entry.nbytes for entry in self.arrays if entry.field == "pre_activation")
        return total

    def restore(self, record: StepRecord, buffer) -> StepRecord:
        """``record`` with its arrays back, as read-only copies out of ``buffer`` (and the
        output map made from the pre-activation, when it was left out)."""
        changes: dict = {}
        groups: dict[str, dict] = {}
        for entry in self.arrays:
            dtype = np.dtype(entry.dtype)
            copy = np.ndarray(entry.shape, dtype, buffer=buffer, offset=entry.offset).copy()
            copy.flags.writeable = False
            if entry.key is None:
                changes[entry.field] = copy
            else:
                if entry.field not in groups:
                    groups[entry.field] = dict(getattr(record, entry.field))
                groups[entry.field][entry.key] = copy
        for name, keys in self.orders:
            group = groups[name]
            changes[name] = MappingProxyType({key: group[key] for key in keys})
        if self.activation is not None:
            output, _ = activation_forward(changes["pre_activation"], *self.activation)
            output.flags.writeable = False
            changes["activation"] = output
        return dataclasses.replace(record, **changes)


def remade_activation(config: TrainingConfig) -> tuple[str, float] | None:
    """The activation the window makes a frame's output map again with, or None to copy it.

    ReLU's output costs the window less to make again than to copy out of shared memory, and
    the identity's is the pre-activation itself; leaky ReLU's takes a comparison, a multiply
    and a select, three times the copy's time on the window's thread (measured, F=16).
    """
    if config.activation in ("relu", "identity"):
        return (config.activation, config.negative_slope)
    return None


def _large_arrays(
    record: StepRecord, *, with_output: bool = True
) -> list[tuple[str, str | None, np.ndarray]]:
    """The arrays of ``record`` that go through shared memory: its maps (the output map only
    ``with_output``), and the arrays of its parameter groups of ``SHARED_MIN_BYTES`` or
    more."""
    found = [
        (name, None, getattr(record, name))
        for name in ("pre_activation", "activation")
        if getattr(record, name) is not None and (with_output or name == "pre_activation")
    ]
    for name in ARRAY_GROUPS:
        group = getattr(record, name)
        if group is not None:
            found.extend((name, k, v) for k, v in group.items() if v.nbytes >= SHARED_MIN_BYTES)
    return found


@dataclass(frozen=True)
class Frame:
    """What the window needs to draw training progress.

    ``rows`` are the metric rows added since the previous frame (scalars, losses,
    probabilities, as ``MetricsTable.extend`` takes them); ``generation`` counts resets and
    rewinds so that a frame sent before one is recognised as stale. With ``shared`` set, the
    record travels without its maps and its large parameter arrays, which wait in shared memory
    (``ArraySlots``). ``TrainerClient.frames`` puts them back into the newest frame that has
    arrived (large ones on another thread, handed out once complete); a frame that still has
    ``shared`` set is incomplete and not to be shown (a newer one came with it, or its block
    was gone).
    """

    generation: int
    record: StepRecord
    rows: tuple[np.ndarray, np.ndarray, np.ndarray]
    history: str
    outcome: RunOutcome | None = None
    shared: SharedRef | None = None


class ArraySlots:
    """Shared-memory slots that carry records' large arrays to the window without pickling them.

    The maps are most of a record (16 images × 8 filters of 64×64 in float64 are 8 MB) and
    pushing them through a pipe 60 times a second halved the training speed; the classifier's
    weights, gradient and update (one per ReLU output, 0.8 MB there) cost the window another
    2 ms a frame through the pipe (measured). The training process copies them into a free
    slot; the window copies them out and hands the slot back (``release``). When no slot is
    free, the frame waits for the next step.
    """

    SLOTS = 3

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._block: shared_memory.SharedMemory | None = None
        self._slot_bytes = 0
        self._free: set[int] = set()

    def put(
        self, record: StepRecord, activation: tuple[str, float] | None = None
    ) -> tuple[StepRecord, SharedRef] | None:
        """The record without its large arrays and where they went, or None when no slot is
        free.

        Given the ``activation`` (name, negative slope) that made the record's output map from
        its pre-activation, the output map is left out, and ``SharedRef.restore`` makes it
        again with ``model.layers.activation_forward``: for ReLU the engine's own elementwise
        operation (``np.maximum(x, 0)``) on the same numbers, so bit for bit the same array,
        for half the copying (with 16 filters of 64×64, copying the maps in was a sixth of the
        training process's time). See ``remade_activation`` for when that pays.
        """
        arrays = _large_arrays(record, with_output=activation is None)
        offsets = []
        size = 0
        for _, _, array in arrays:
            offsets.append(size)
            size += -(-array.nbytes // 64) * 64  # each array on a cache line of its own
        with self._lock:
            if self._block is None or self._slot_bytes != size:
                self._new_block(size)
            if not self._free:
                return None
            slot = self._free.pop()
            block = self._block
        base = slot * size
        entries = []
        changes: dict = {}
        orders = []
        for (name, key, array), offset in zip(arrays, offsets, strict=True):
            at = base + offset
            np.ndarray(array.shape, array.dtype, buffer=block.buf, offset=at)[...] = array
            entries.append(SharedArray(name, key, at, array.shape, array.dtype.str))
            if key is None:
                changes[name] = None
                continue
            if name not in changes:
                group = getattr(record, name)
                orders.append((name, tuple(group)))
                changes[name] = dict(group)
            del changes[name][key]
        if activation is not None:
            changes["activation"] = None
        ref = SharedRef(block.name, slot, tuple(entries), tuple(orders), activation)
        return dataclasses.replace(record, **changes), ref

    def release(self, block: str, slot: int) -> None:
        with self._lock:
            if self._block is not None and self._block.name == block:
                self._free.add(slot)

    def close(self) -> None:
        with self._lock:
            self._drop_block()

    def _new_block(self, slot_bytes: int) -> None:
        # Maps of another size (a new run): the window attaches to the new block by name.
        self._drop_block()
        self._block = shared_memory.SharedMemory(create=True, size=slot_bytes * self.SLOTS)
        self._slot_bytes = slot_bytes
        self._free = set(range(self.SLOTS))

    def _drop_block(self) -> None:
        if self._block is not None:
            self._block.close()
            self._block.unlink()
            self._block = None


class _FrameSender:
    """Sends frames from a thread of its own, so training never waits for the window.

    A pipe holds less than one frame; sending from the training loop would make every step
    wait until the window next reads. The loop hands a frame over and goes on; if the window
    has not taken the previous one yet, the new one replaces it and carries its metric rows
    along, so no row is ever lost.
    """

    def __init__(self, connection, slots: ArraySlots) -> None:
        self._connection = connection
        self._slots = slots
        self._condition = threading.Condition()
        self._pending: Frame | None = None
        self._sending = False
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="frames", daemon=True)
        self._thread.start()

    def offer(self, frame: Frame) -> None:
        with self._condition:
            waiting = self._pending
            if waiting is not None and waiting.shared is not None:
                self._slots.release(waiting.shared.block, waiting.shared.slot)
            if waiting is not None and waiting.generation == frame.generation:
                rows = tuple(
                    np.concatenate(pair) for pair in zip(waiting.rows, frame.rows, strict=True)
                )
                frame = dataclasses.replace(
                    frame, rows=rows, outcome=frame.outcome or waiting.outcome
                )
            self._pending = frame
            self._condition.notify_all()

    def flush(self) -> None:
        """Wait until every frame offered so far is in the pipe."""
        with self._condition:
            self._condition.wait_for(
                lambda: (self._pending is None and not self._sending) or self._closed
            )

    def close(self) -> None:
        """End the sending thread once it has sent what it holds (the server is done)."""
        with self._condition:
            self._closed = True
            self._condition.notify_all()

    def _loop(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._pending is not None or self._closed)
                if self._pending is None:
                    return  # closed with nothing left to send
                frame, self._pending = self._pending, None
                self._sending = True
            try:
                self._connection.send(frame)
            except (OSError, BrokenPipeError):
                with self._condition:
                    self._closed = True
                    self._condition.notify_all()
                return
            with self._condition:
                self._sending = False
                self._condition.notify_all()


class FrameSchedule:
    """When the next frame of a run is due: every ``FRAME_INTERVAL`` on a fixed schedule, so
    that frames do not drift later by the part of a step that overshoots each interval (with
    10 ms steps, "16.7 ms since the last frame" gives a frame every 20 ms: 50 a second)."""

    def __init__(self) -> None:
        self._due = 0.0

    def due(self, now: float) -> bool:
        return now >= self._due

    def sent(self, now: float) -> None:
        self._due += FRAME_INTERVAL
        if self._due <= now:
            # Behind by a whole frame (a slow step, a pause): start the schedule again.
            self._due = now + FRAME_INTERVAL


@dataclass
class _Run:
    remaining: int
    pause_on_findings: bool
    steps: int = 0
    due: float = field(default_factory=time.perf_counter)


class TrainerServer:
    """Owns the session; answers requests; trains while a run is on. One per process."""

    def __init__(
        self,
        requests,
        frames,
        releases,
        interruptions,
        dataset: Dataset,
        config: TrainingConfig,
    ) -> None:
        self._requests = requests
        self._interruptions = interruptions
        self._releases = releases
        self._slots = ArraySlots()
        self._frames = _FrameSender(frames, self._slots)
        self.session = TrainingSession(dataset, config)
        self._generation = 0
        self._run: _Run | None = None
        self._iterations_per_second = 0.0
        self._sent_iteration = self.session.iteration
        self._schedule = FrameSchedule()
        self._quit = False
        self._reports: dict[int, concurrent.futures.Future] = {}
        self._report_threads: list[threading.Thread] = []
        self._reports_started = 0

    # -- the loop ------------------------------------------------------------------------------

    def serve(self) -> None:
        """Answer requests and train until asked to quit or the window's end of a pipe closes."""
        try:
            while not self._quit:
                if self._run is None:
                    if not self._requests.poll(AHEAD_AFTER_IDLE):
                        self._compute_ahead()
                    self._answer(self._requests.recv())
                    continue
                self._train_one()
                while self._run is not None and self._wait_or_request():
                    self._answer(self._requests.recv())
        except (EOFError, OSError, BrokenPipeError):
            pass  # the window went away: so does this process
        finally:
            # (In a training process the thread would end with it; a server on a thread of
            # the window's process, as in tests, must not leave one behind per run.)
            self._frames.close()
            self._slots.close()
            deadline = time.monotonic() + REPORT_FINISH_SECONDS
            for thread in self._report_threads:
                thread.join(max(0.0, deadline - time.monotonic()))

    def _compute_ahead(self) -> None:
        """Compute the next step while nothing is asked, when a step is quick enough.

        A person looks at a Step's result for far longer than the next step takes, and with 16
        filters of 64×64 the step is about half of the time from pressing Step to seeing it.
        """
        latest = self.session.latest
        # Iteration 0 took its measuring forward pass alone; an update takes up to about twice that.
        seconds = latest.step_seconds * (2 if latest.iteration == 0 else 1)
        if seconds > AHEAD_MAX_SECONDS:
            return
        with contextlib.suppress(Exception):  # the step raises it again when it is asked for
            self.session.compute_ahead()

    def _wait_or_request(self) -> bool:
        """Pace the run; True as soon as a request is waiting."""
        rate = self._iterations_per_second
        if rate <= 0:
            return self._requests.poll()
        delay = self._run.due - time.perf_counter()
        return self._requests.poll(max(delay, 0.0))

    def _train_one(self) -> None:
        run = self._run
        try:
            record = self.session.step()
        except Exception as exc:  # noqa: BLE001 - reported to the window, the process lives on
            self._end_run(error=(f"{type(exc).__name__}: {exc}", traceback.format_exc()))
            return
        run.steps += 1
        run.remaining -= 1
        if self._iterations_per_second > 0:
            run.due = max(run.due + 1 / self._iterations_per_second, time.perf_counter() - 0.1)
        paused_by = None
        if run.pause_on_findings:
            paused_by = next((f for f in record.findings if f.pauses), None)
        if paused_by is not None or run.remaining <= 0:
            self._end_run(paused_by=paused_by)
        elif self._schedule.due(time.perf_counter()):
            self._send_frame(final=False)

    def _end_run(self, *, paused_by=None, stopped=False, error=None) -> RunOutcome:
        steps = self._run.steps if self._run is not None else 0
        self._run = None
        outcome = RunOutcome(steps, paused_by, stopped, error)
        self._send_frame(outcome=outcome)
        # The run's last frame is in the pipe before any reply that follows (a stop, a reset).
        self._frames.flush()
        return outcome

    def _send_frame(self, *, outcome: RunOutcome | None = None, final: bool = True) -> None:
        """Hand the newest record and the new metric rows to the sender. A frame that is not
        the last of a run waits for the next step when no map slot is free."""
        while self._releases.poll():
            self._slots.release(*self._releases.recv())
        record = dataclasses.replace(self.session.latest, velocity=None)
        shared = None
        if record.pre_activation is not None:
            activation = remade_activation(self.session.config)
            placed = self._slots.put(record, activation)
            if placed is None and final:
                # The window hands a slot back within a poll, or once it has put a large frame
                # back: waiting for it beats carrying the maps through the pipe (400 MB of them
                # kept the window waiting three seconds for a stop).
                deadline = time.monotonic() + FINAL_SLOT_WAIT
                while placed is None and self._releases.poll(max(deadline - time.monotonic(), 0)):
                    self._slots.release(*self._releases.recv())
                    placed = self._slots.put(record, activation)
            if placed is not None:
                record, shared = placed
            elif not final:
                return
        history = self.session.history
        rows = history.metrics.rows_after(self._sent_iteration)
        self._sent_iteration = self.session.iteration
        self._schedule.sent(time.perf_counter())
        frame = Frame(self._generation, record, rows, describe_budget(history), outcome, shared)
        self._frames.offer(frame)

    def _answer(self, request) -> None:
        """Answer ``(number, name, args, kwargs)`` with ``(number, 'ok', result)`` or
        ``(number, 'error', ...)``: the number pairs a reply with its request."""
        number, name, args, kwargs = request
        try:
            result = getattr(self, f"do_{name}")(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the window shows it
            message = f"{type(exc).__name__}: {exc}"
            # (a file that could not be written, a setting refused; any other ValueError may
            # be a bug, and keeps its traceback)
            refused = isinstance(exc, (OSError, ConfigError))
            reply = ("error", message, traceback.format_exc(), str(exc), refused)
            self._requests.send((number, *reply))
            return
        self._requests.send((number, "ok", result))

    def _restart_stream(self) -> tuple:
        """After a reset or rewind: new generation, and the state to rebuild the window from."""
        self._generation += 1
        self._sent_iteration = self.session.iteration
        history = self.session.history
        return (
            self._generation,
            self.session.latest,
            history.metrics.rows_after(-1),
            describe_budget(history),
        )

    # -- requests (do_<name>) ----------------------------------------------------------------

    def do_run(self, max_steps: int, pause_on_findings: bool) -> int:
        if self._run is None:
            self._run = _Run(max_steps, pause_on_findings)
        return self._generation

    def do_stop(self) -> RunOutcome | None:
        """End the run after the step in progress (its last frame still follows)."""
        if self._run is None:
            return None
        return self._end_run(stopped=True)

    def do_speed(self, iterations_per_second: float) -> None:
        self._iterations_per_second = float(iterations_per_second)

    def do_quit(self) -> None:
        self._run = None
        self._quit = True

    def do_state(self) -> tuple:
        return self._restart_stream()

    def do_reset(self, config: TrainingConfig | None = None, dataset: Dataset | None = None):
        self.session.reset(config=config, dataset=dataset)
        return self._restart_stream()

    def do_rewind(self, iteration: int):
        self.session.rewind(iteration)
        return self._restart_stream()

    def do_update_settings(
        self, changes: dict, predict: bool = True
    ) -> tuple[TrainingConfig, StepRecord | None]:
        """The new config, and iteration 0's record when the change was made there (its
        settings, and maybe its predictions of the first update, made again:
        ``TrainingSession.update_settings``), else None."""
        before = self.session.latest
        self.session.update_settings(predict=predict, **changes)
        latest = self.session.latest
        return self.session.config, (None if latest is before else latest)

    def do_predict_first_update(self) -> StepRecord | None:
        """Iteration 0's record if its predictions of the first update were made again."""
        return self.session.latest if self.session.predict_first_update() else None

    def do_record(self, iteration: int, *, interruptions: int | None = None) -> StepRecord | None:
        """The record of ``iteration``; given the client's count of ``interruptions`` when it
        was asked for, None as soon as that count changes during a recomputation."""
        if interruptions is None:
            return self.session.record(iteration)
        counter = self._interruptions
        try:
            return self.session.record(
                iteration, should_stop=lambda: counter.value != interruptions
            )
        except Interrupted:
            return None

    def do_velocity(self, iteration: int):
        """The momentum buffers after ``iteration`` (the frames leave them out), as a plain
        dict (a record's read-only mapping does not pickle)."""
        velocity = self.session.record(iteration).velocity
        return None if velocity is None else dict(velocity)

    def do_preview(self, learning_rate: float) -> StepRecord:
        return self.session.preview(learning_rate)

    def do_what_if(self, factors) -> list:
        # Imported on first use: the window's process loads this module too, and needs
        # neither previews nor reports at start-up.
        from model.whatif import what_if

        return what_if(self.session, factors)

    def do_steps_to_epoch_end(self) -> int:
        return self.session.steps_to_epoch_end()

    def do_history(self) -> str:
        return describe_budget(self.session.history)

    def do_pixel_stats(self):
        return self.session.pixel_stats

    def do_start_report(self, directory, *, snapshot_iterations=None, **options) -> int:
        """Start writing a report of the session as it is now in a thread of its own (it takes
        seconds after a long run, and meanwhile this process answers the window and trains);
        returns the job to ask ``do_report_result`` about."""
        from model.report import RunSnapshot, write_report

        run = RunSnapshot(self.session, snapshot_iterations)
        future: concurrent.futures.Future = concurrent.futures.Future()

        def write() -> None:
            try:
                result = write_report(run, directory, **options)
            except Exception as exc:  # noqa: BLE001 - handed to the window
                future.set_exception(exc)
            else:
                future.set_result(result)

        self._reports_started += 1
        job = self._reports_started
        self._reports[job] = future
        # Not a daemon: quitting waits for it (``serve``), or it would leave a half-written
        # hidden folder behind.
        thread = threading.Thread(target=write, name=f"report {job}")
        self._report_threads = [t for t in self._report_threads if t.is_alive()] + [thread]
        thread.start()
        return job

    def do_report_result(self, job: int):
        """``(True, result)`` once report ``job`` is written (its error raised here if it
        failed), else ``(False, None)`` at once (the run goes on between two questions)."""
        future = self._reports[job]
        if not future.done():
            return False, None
        del self._reports[job]
        return True, future.result()


def _serve_in_child(requests, frames, releases, interruptions, dataset, config) -> None:
    # Ctrl+C in the terminal reaches every process of its group: the window decides (it closes,
    # and ends this process). Dying with it, this process lost the run under an open window.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    TrainerServer(requests, frames, releases, interruptions, dataset, config).serve()


class TrainerClient:
    """The window's handle on the training server.

    Parameters
    ----------
    dataset, config : the run to start with.
    backend : 'process' (default) or 'thread'.
    """

    def __init__(self, dataset: Dataset, config: TrainingConfig, backend: str = "process"):
        self._call_lock = threading.Lock()  # one call waiting for its reply at a time
        self._send_lock = threading.Lock()
        self._numbers = itertools.count(1)  # of requests, echoed by their replies
        self._frames_lock = threading.Lock()
        self._received: list[Frame] = []
        # Frames arrived but not handed out yet, oldest first: the first is being completed
        # by ``_restorer`` while ``_restoring`` is set (see ``_hand_out``).
        self._held: list[Frame] = []
        self._handed_back: set[int] = set()  # ids of held frames whose slots went back early
        # Frames that could not be read or completed: (iteration, error, traceback), for the
        # window to say (``take_failures``); raised out of ``frames`` or ``call`` they lost
        # the frame (a run's last: the run never ended) and left a request's reply unread.
        self._failures: list[tuple[int | None, str, str]] = []
        self._restoring: concurrent.futures.Future | None = None
        self._restorer: concurrent.futures.ThreadPoolExecutor | None = None
        self._pipe_closed = False
        self.backend = backend
        context = multiprocessing.get_context("spawn")
        pipe = context.Pipe if backend == "process" else multiprocessing.Pipe
        self._requests, server_requests = pipe(duplex=True)
        self._frames, frames_out = pipe(duplex=False)
        releases_in, self._releases = pipe(duplex=False)
        # Shared with the server: it only reads it.
        self._interruptions = context.Value("Q", 0)
        self._blocks: dict[str, shared_memory.SharedMemory] = {}
        self.server: TrainerServer | None = None
        if backend == "process":
            self._process = context.Process(
                target=_serve_in_child,
                args=(
                    server_requests,
                    frames_out,
                    releases_in,
                    self._interruptions,
                    dataset,
                    config,
                ),
                name="training",
                daemon=True,
            )
            # The window needs one of the (often two) cores; a second BLAS thread here would
            # fight it for that core (model.blas).
            try:
                with single_threaded_blas():
                    self._process.start()
            except BaseException:
                # (no process, no run: its pipes are closed now, not whenever they are collected)
                for end in (self._requests, self._frames, self._releases):
                    end.close()
                raise
            finally:
                for end in (server_requests, frames_out, releases_in):
                    end.close()
        elif backend == "thread":
            self.server = TrainerServer(
                server_requests, frames_out, releases_in, self._interruptions, dataset, config
            )
            self._process = threading.Thread(target=self.server.serve, name="training", daemon=True)
            self._process.start()
        else:
            raise ValueError(f"backend must be 'process' or 'thread', got {backend!r}")

    @property
    def alive(self) -> bool:
        """False once the server is gone: its pipe closed (noticed at once) or its process
        ended (a killed process may still be reaped a moment later)."""
        return not self._pipe_closed and self._process.is_alive()

    def call(
        self, name: str, *args, timeout: float = CALL_TIMEOUT, interrupting: bool = True, **kwargs
    ):
        """Run ``TrainerServer.do_<name>(*args, **kwargs)`` in the server and return its result.

        Raises ``TrainerError`` when it failed there, or when the server is gone. A call made
        while another is in progress interrupts it if it is a recomputation that may be
        interrupted (``record_unless_interrupted``), and waits for it to end either way; one
        with ``interrupting=False`` (a background thread polling) only waits.
        """
        if not self._call_lock.acquire(blocking=False):
            if interrupting:
                self.interrupt()
            self._call_lock.acquire()
        try:
            number = self._send(name, args, kwargs)
            reply = self._reply(name, number, time.monotonic() + timeout)
        except (EOFError, OSError, BrokenPipeError) as exc:
            raise self._pipe_gone(exc) from exc
        finally:
            self._call_lock.release()
        if reply[0] == "error":
            raise TrainerError(reply[1], reply[2], text=reply[3], refused=reply[4])
        return reply[1]

    def _send(self, name: str, args: tuple, kwargs: dict) -> int:
        """Send a request; returns its number, which its reply carries. Raises
        ``TrainerError`` when the server is gone."""
        with self._send_lock:
            number = next(self._numbers)
            try:
                self._requests.send((number, name, args, kwargs))
            except OSError as exc:  # (a broken pipe too)
                raise self._pipe_gone(exc) from exc
        return number

    def _pipe_gone(self, exc: Exception) -> TrainerError:
        """The error to raise for a pipe to the training process that closed (marked closed,
        so that ``alive`` says so)."""
        self._pipe_closed = True
        return TrainerError(f"the training process has stopped ({exc})")

    def _reply(self, name: str, number: int, deadline: float):
        """The reply to request ``number``. The server answers in order; the replies that
        come before it belong to requests nobody waits for (``ask``, or a call given up on)
        and are dropped."""
        while True:
            # Keep taking frames while waiting: a server blocked on a full frame pipe could
            # never read this request.
            while not self._requests.poll(0.01):
                self._drain_frames()
                if not self.alive:
                    raise TrainerError("the training process has stopped")
                if time.monotonic() > deadline:
                    raise TrainerError(f"the training process did not answer '{name}'")
            reply = self._requests.recv()
            if reply[0] == number:
                return reply[1:]

    def ask(self, name: str, *args, **kwargs) -> None:
        """Send ``TrainerServer.do_<name>(*args, **kwargs)`` without waiting for its reply,
        which is dropped: for a stop, whose effect the run's last frame shows. The server
        takes it after the step in progress (which can take a second on a large run: a call
        waits for it), and after a call in progress, which gives way if it is an
        interruptible recomputation. Raises ``TrainerError`` when the server is gone."""
        if self._call_lock.locked():
            self.interrupt()
        self._send(name, args, kwargs)

    @property
    def interruptions(self) -> int:
        """How many interruptions were asked for so far (see ``record_unless_interrupted``)."""
        return self._interruptions.value

    def interrupt(self) -> None:
        """Make a recomputation in progress or waiting to start give way (its
        ``record_unless_interrupted`` returns None)."""
        with self._interruptions.get_lock():
            self._interruptions.value += 1

    def record_unless_interrupted(self, iteration: int, interruptions: int) -> StepRecord | None:
        """The record of ``iteration``, or None when an interruption is counted after
        ``interruptions`` (the value of ``self.interruptions`` taken when it was wanted) before
        it is complete. For a background thread: it may replay many updates."""
        # Waiting for another call, it must not count an interruption: that would be its own.
        return self.call("record", iteration, interruptions=interruptions, interrupting=False)

    def frames(self, *, complete: bool = False) -> list[Frame]:
        """Every frame handed out so far (oldest first), without waiting; only the newest of
        those that came together is complete (see ``Frame``).

        A frame whose arrays are large is completed on another thread and handed out, with the
        frames that came after it, once it is (a later call); ``complete`` waits for it
        instead (when a run has been stopped and its last frame must be shown now)."""
        self._drain_frames(complete=complete)
        with self._frames_lock:
            received, self._received = self._received, []
        return received

    def _drain_frames(self, *, complete: bool = False) -> None:
        with self._frames_lock:
            while True:
                try:
                    if not self._frames.poll():
                        break
                    self._held.append(self._frames.recv())
                except (EOFError, OSError):
                    break  # (the pipe closed: ``alive`` says so)
                except Exception as exc:  # noqa: BLE001 - kept for ``take_failures``
                    # (A run's last frame may carry its maps pickled, hundreds of MB: out of
                    # memory, it is lost, not the call that was taking frames.)
                    self._fail(None, exc)
            if self._restoring is not None and not self._restoring.done():
                # Behind a frame being completed, only a run's last frame will be: the others'
                # slots go back now (the training process may be waiting for one).
                for frame in self._held[1:]:
                    if frame.outcome is None:
                        self._hand_back(frame)
            self._hand_out(complete)

    def _hand_out(self, complete: bool) -> None:
        """Move the held frames to ``_received``, in the order they came.

        The window shows the newest frame only: the arrays of the ones before it are not copied
        out of shared memory (with 16 filters of 64×64 a frame's are 16 MB, a fifth of the
        window's time copied for nothing when two frames come in one poll). Their slots go back
        at once and they keep ``shared``, which marks them as not to show. The newest is
        completed at once, or, when its arrays are large, on ``_restorer``'s thread: it and the
        frames after it stay held until that is done (their metric rows too, so that rows
        always come in order), and of those only a run's last frame keeps its slot, to be
        completed next."""
        while self._held:
            if self._restoring is not None:
                if not (complete or self._restoring.done()):
                    return
                frame, future = self._held.pop(0), self._restoring
                self._restoring = None
                self._received.append(self._completed(frame, future.result))
                continue
            *older, newest = self._held
            for frame in older:
                self._hand_back(frame)
            self._received.extend(older)
            self._held = []
            gone = id(newest) in self._handed_back
            self._handed_back.clear()
            ref = newest.shared
            if ref is None or gone:  # (complete, or its slot went back: not to show)
                self._received.append(newest)
                continue
            if complete or ref.restored_bytes() < BACKGROUND_RESTORE_BYTES:
                self._received.append(self._completed(newest, partial(self._record_of, newest)))
                continue
            block = self._attach(ref.block)
            if block is None:  # (gone: it stays incomplete, as in ``_record_of``)
                self._received.append(newest)
                continue
            if self._restorer is None:
                self._restorer = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="frame-arrays"
                )
            self._restoring = self._restorer.submit(ref.restore, newest.record, block.buf)
            self._held = [newest]

    def _hand_back(self, frame: Frame) -> None:
        """Give the slot of a frame that will not be completed back (once)."""
        if frame.shared is not None and id(frame) not in self._handed_back:
            self._handed_back.add(id(frame))
            self._release(frame.shared)

    def _record_of(self, frame: Frame) -> StepRecord | None:
        """The frame's record with its arrays put back from shared memory; None when the
        block is gone (a run replaced since): the frame then stays incomplete, and the
        controller takes its rows but never shows it."""
        ref = frame.shared
        block = self._attach(ref.block)
        return None if block is None else ref.restore(frame.record, block.buf)

    def _completed(self, frame: Frame, record_of) -> Frame:
        """``frame`` with the record ``record_of()`` gives and its slot given back; as it is
        when there is none or that fails: incomplete, so not shown, but its rows and outcome
        are taken, and a failure is kept for ``take_failures``."""
        try:
            record = record_of()
        except Exception as exc:  # (MemoryError too: a frame's maps can be hundreds of MB)
            self._hand_back(frame)
            self._fail(frame.record.iteration, exc)
            return frame
        if record is None:
            return frame
        self._release(frame.shared)
        return dataclasses.replace(frame, record=record, shared=None)

    def _fail(self, iteration: int | None, exc: Exception) -> None:
        self._failures.append((iteration, f"{type(exc).__name__}: {exc}", traceback.format_exc()))

    def take_failures(self) -> list[tuple[int | None, str, str]]:
        """The frames that could not be read or completed since the last call: (iteration,
        None when the frame could not be read; error; traceback) each."""
        with self._frames_lock:
            failures, self._failures = self._failures, []
        return failures

    def _release(self, ref: SharedRef) -> None:
        """Hand a slot back to the training process (nothing to do if it is gone: the frames
        still waiting are taken all the same, and ``alive`` says it stopped)."""
        with contextlib.suppress(OSError):
            self._releases.send((ref.block, ref.slot))

    def _attach(self, name: str) -> shared_memory.SharedMemory | None:
        if name not in self._blocks:
            for old in self._blocks.values():
                old.close()
            self._blocks.clear()
            try:
                block = shared_memory.SharedMemory(name=name)
            except FileNotFoundError:
                return None
            # Attaching registers the block with the resource tracker the training process
            # shares with this one (spawned children inherit it); that is a no-op, and the
            # training process unlinks the block.
            self._blocks[name] = block
        return self._blocks[name]

    def terminate(self) -> None:
        """End the training process at once, without waiting for a call in progress (which
        then fails): for leaving while it is busy. A thread server cannot be ended so."""
        if self.backend == "process" and self._process.is_alive():
            self._process.terminate()

    def close(self, timeout: float = 5.0) -> None:
        """Ask the server to quit and wait for it (terminating a process that does not)."""
        if self.alive:
            try:
                self.call("quit", timeout=timeout)
            except TrainerError:
                pass
        self._process.join(timeout)
        if self.backend == "process" and self._process.is_alive():
            self._process.terminate()
            self._process.join(timeout)
        with self._frames_lock:  # (a call on another thread may be taking frames)
            if self._restorer is not None:
                self._restorer.shutdown(wait=True)  # (before the blocks it reads are closed)
            for end in (self._requests, self._frames, self._releases):
                end.close()
            for block in self._blocks.values():
                block.close()
            self._blocks.clear()
