"""Two runs in lockstep: a second run that follows the main one on the same data.

The follower uses the leader's images, seed and sample order (update mode and shuffling) with
its own initialisation, learning rate and other settings. Whatever the leader does, the
follower does too: new iterations (it catches up within a frame), a reset or new data, a
rewind ("continue from here"), and the iteration shown on the history slider.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Slot

from inspector.controller import SessionController
from model.config import TrainingConfig
from model.record import StepRecord

#: Settings the follower always takes from the leader, so both see the same sample order.
SHARED_FIELDS = ("seed", "update_mode", "shuffle")


def follower_config(leader: TrainingConfig, own: TrainingConfig) -> TrainingConfig:
    """``own`` settings with the leader's seed and sample order."""
    return own.with_changes(**{name: getattr(leader, name) for name in SHARED_FIELDS})


class ComparisonLink(QObject):
    """Makes ``follower`` move in lockstep with ``leader``."""

    def __init__(self, leader: SessionController, follower: SessionController) -> None:
        super().__init__(leader)
        self.leader = leader
        self.follower = follower
        leader.history_changed.connect(self.follow_progress)
        leader.session_reset.connect(self.follow_reset)
        leader.record_shown.connect(self._follow_view)
        leader.iteration_picked.connect(self._follow_pick)
        follower.running_changed.connect(self._on_follower_running)
        follower.run_starting.connect(self._on_follower_starting)
        self._reset_again = False  # the leader reset while the follower's run was starting

    def disconnect_all(self) -> None:
        leader, follower = self.leader, self.follower
        leader.history_changed.disconnect(self.follow_progress)
        leader.session_reset.disconnect(self.follow_reset)
        leader.record_shown.disconnect(self._follow_view)
        leader.iteration_picked.disconnect(self._follow_pick)
        follower.running_changed.disconnect(self._on_follower_running)
        follower.run_starting.disconnect(self._on_follower_starting)

    @Slot(int)
    def follow_progress(self, last: int) -> None:
        follower = self.follower
        if follower.is_running:
            return  # it picks up the rest when its run ends
        if last < follower.latest_iteration:
            follower.rewind_to(last)
        elif last > follower.latest_iteration:
            follower.run_steps(last - follower.latest_iteration)

    @Slot(bool)
    def _on_follower_running(self, running: bool) -> None:
        if not running:
            self.follow_progress(self.leader.latest_iteration)

    @Slot(object)
    def follow_reset(self, _record: StepRecord | None = None) -> None:
        leader, follower = self.leader, self.follower
        if follower.is_starting:
            self._reset_again = True  # once that start has ended, with the leader's latest
            return
        config = follower_config(leader.config, follower.config)
        if leader.dataset is follower.dataset:
            follower.start_over(config)
        else:
            follower.start_over(config, leader.dataset, leader.dataset_source)

    @Slot(bool)
    def _on_follower_starting(self, starting: bool) -> None:
        # The follower ignores what it is asked while it starts or goes back in the
        # background; once the controller has taken the result (it announces the end of the
        # start first), it follows the leader as the leader is then.
        if not starting:
            QTimer.singleShot(0, self, self._after_follower_start)

    def _after_follower_start(self) -> None:
        if self.follower.is_starting:
            return
        if self._reset_again:
            self._reset_again = False
            self.follow_reset(None)
        else:
            self.follow_progress(self.leader.latest_iteration)

    @Slot(int)
    def _follow_pick(self, iteration: int) -> None:
        # At once, not when the leader's record has come: both may be recomputing it.
        if iteration <= self.follower.latest_iteration:
            self.follower.show_iteration(iteration)

    @Slot(object)
    def _follow_view(self, record: StepRecord) -> None:
        follower = self.follower
        if self.leader.following_latest:
            if not follower.following_latest:
                follower.follow_latest()
        elif record.iteration <= follower.latest_iteration:
            follower.show_iteration(record.iteration)
