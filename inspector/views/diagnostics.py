"""The Diagnostics panel: the engine's findings for the shown iteration, most recent first, each
with its plain-language explanation and one-click fixes."""

from __future__ import annotations

from dataclasses import replace

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSizePolicy,
    QVBoxLayout,
    QWidget,
)

from inspector import dialogs
from inspector.errors import log_error
from inspector.layout_guard import LayoutGuard
from inspector.views.widgets import SelectableLabel, scroll_area
from model.diagnostics import Finding, merge_alike, sort_findings, useful_fixes
from model.record import StepRecord
from model.trial import (
    MAX_TRIAL_WORK,
    TRIAL_ITERATIONS,
    Trial,
    TrialWorker,
    trial_config,
    trial_work,
)

SEVERITY_STYLE = {
    "error": ("#b2182b", "#fdecea", "Problem"),
    "warning": ("#b35806", "#fff4e5", "Warning"),
    "info": ("#2166ac", "#eaf2fb", "Note"),
}
#: While training, findings are rebuilt at most this often (their widgets are not cheap).
RUNNING_REFRESH_MS = 250
TRIAL_TIP = (
    f"The line under the fix: a fresh run of its settings for {TRIAL_ITERATIONS} updates, on "
    "the same images with the same seed and sample order, the run pressing this fix starts."
)
TRYING = "Trying it…"
#: Notes of fixes not tried, so that a button without a trial's outcome says why (a review).
TOO_LARGE = "Not tried: too large a run to try in a moment."
#: How often a trial in progress is looked at.
TRIAL_POLL_MS = 30
#: The trials' process ends after this long with nothing to try.
WORKER_IDLE_MS = 20_000
#: Trials start once the settings and cards have been still this long.
TRIAL_DELAY_MS = 400
#: A trial not done in this time is stopped, and its fix says so (TOO_SLOW).
TRIAL_SECONDS = 3.0
TOO_SLOW = f"Not tried: it took longer than {TRIAL_SECONDS:g} s and was stopped."


class FixButton(QPushButton):
    """A push button whose label wraps, so a long fix never widens the panel; a second, muted
    line under it says what the fix did when it was tried (``set_note``)."""

    def __init__(self, text: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("findingFix")
        self._label = QLabel(text, self)
        self._note = QLabel(self)
        self._note.setObjectName("findingFixTrial")
        self._note.setStyleSheet("color: #444; font-style: italic;")
        for label in (self._label, self._note):
            label.setWordWrap(True)
            label.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._note.hide()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 4, 8, 4)
        layout.setSpacing(1)
        layout.addWidget(self._label)
        layout.addWidget(self._note)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Minimum)

    def label_text(self) -> str:
        return self._label.text()

    def note_text(self) -> str:
        """What trying the fix showed ('' when it was not tried)."""
        return self._note.text() if not self._note.isHidden() else ""

    def set_note(self, note: str) -> None:
        if note == self.note_text():
            return
        self._note.setText(note)
        self._note.setVisible(bool(note))
        self.setToolTip(self.toolTip().split("\n\n")[0] + (f"\n\n{TRIAL_TIP}" if note else ""))

    def sizeHint(self):  # noqa: N802 - Qt override
        return self.layout().sizeHint()

    def minimumSizeHint(self):  # noqa: N802 - Qt override
        return self.layout().minimumSize()

    def hasHeightForWidth(self) -> bool:  # noqa: N802 - Qt override
        return True

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt override
        return self.layout().heightForWidth(width)


class FindingCard(QFrame):
    """One finding: severity chip, title, iteration, explanation and fix buttons."""

    def __init__(self, finding: Finding, apply_fix, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.finding = finding
        accent, background, word = SEVERITY_STYLE[finding.severity]
        self.setObjectName(f"finding_{finding.code}")
        self.setFrameShape(QFrame.Shape.StyledPanel)
        self.setStyleSheet(
            f"FindingCard {{ background: {background}; border: 1px solid {accent}; "
            f"border-left: 5px solid {accent}; border-radius: 4px; }}"
        )
        layout = QVBoxLayout(self)
        layout.setContentsMargins(10, 8, 10, 8)
        layout.setSpacing(4)

        header = QHBoxLayout()
        chip = QLabel(word.upper())
        chip.setStyleSheet(
            f"color: white; background: {accent}; border-radius: 3px; padding: 1px 6px;"
            "font-weight: bold; font-size: 10px;"
        )
        header.addWidget(chip, 0, Qt.AlignmentFlag.AlignTop)
        self._stamp = QLabel()
        self._stamp.setStyleSheet("color: #555; background: transparent; border: none;")
        # Its iteration changes at every Step: guarded, so that a card whose title and
        # explanation stay the same is not laid out again (with its wrapped text measured).
        header.addWidget(LayoutGuard(self._stamp, self), 0, Qt.AlignmentFlag.AlignVCenter)
        header.addStretch(1)
        layout.addLayout(header)
        # The title has a line of its own: beside the chip and the stamp it made the card
        # some 300 pixels wide at the least, and a narrow dock cut the card off at the right.
        self._title = QLabel()
        self._title.setObjectName("findingTitle")
        self._title.setWordWrap(True)
        self._title.setStyleSheet("font-weight: bold; background: transparent; border: none;")
        # Title and explanation carry the iteration's numbers: guarded like the stamp, so that
        # new numbers on as many lines do not lay out the main window again (each Step, and
        # at each refresh while running, that repainted all of it).
        layout.addWidget(LayoutGuard(self._title, self))

        self._text = SelectableLabel()
        self._text.setObjectName("findingExplanation")
        self._text.setWordWrap(True)
        self._text.setStyleSheet("background: transparent; border: none;")
        layout.addWidget(LayoutGuard(self._text, self))
        self._show_texts(finding)

        self.fix_buttons: list[FixButton] = []
        for index, fix in enumerate(finding.fixes):
            button = FixButton(f"Fix: {fix.label}")
            button.setToolTip(
                "Rewinds, then changes the setting and continues from there."
                if fix.rewind_to is not None
                else "Starts a new run with this setting (same seed)."
                if fix.needs_reset
                else "Changes the setting from the next iteration on."
            )
            button.clicked.connect(lambda _checked=False, i=index: self._fix(i))
            layout.addWidget(button)
            self.fix_buttons.append(button)
        self._apply_fix = apply_fix

    def matches(self, finding: Finding) -> bool:
        """Whether ``finding`` can be shown by this card (same kind, subject and fixes)."""
        return (
            finding.code == self.finding.code
            and finding.subject == self.finding.subject
            and finding.severity == self.finding.severity
            and finding.fixes == self.finding.fixes
        )

    def update_finding(self, finding: Finding) -> None:
        """Show a newer finding of the same kind without rebuilding the card's widgets."""
        self.finding = finding
        self._show_texts(finding)

    def _show_texts(self, finding: Finding) -> None:
        when = f"iteration {finding.iteration}"
        if finding.since is not None and finding.since != finding.iteration:
            when += f" · since {finding.since}"
        if finding.iteration == 0 and finding.code in _PRETRAINING_CODES:
            when = "before training"
        for label, text in (
            (self._title, finding.title),
            (self._stamp, when),
            (self._text, finding.explanation),
        ):
            if label.text() != text:
                label.setText(text)

    def _fix(self, index: int) -> None:
        self._apply_fix(self.finding.fixes[index])


_PRETRAINING_CODES = {
    "init_all_positive",
    "raw_pixels",
    "first_update_kills",
    "first_update_large",
    "large_maps",
}


def _said_of_iteration_0(finding: Finding) -> Finding:
    """A prediction made at iteration 0, as read once the run has gone on: "Pressing Step now
    will kill the filter" told a learner looking back at iteration 0 to do something now (a
    learner's review), though Step goes on from the latest iteration."""
    prefix = "Pressing Step now will "
    if finding.code != "first_update_kills" or not finding.title.startswith(prefix):
        return finding
    rest = finding.title.removeprefix(prefix)
    return replace(finding, title=f"Pressing Step at iteration 0 would {rest}")


class DiagnosticsView(QWidget):
    """Findings of ``controller.shown``; a banner says when a finding paused the run.

    ``confirm(fix, dropped) -> bool`` is asked before a fix that goes back drops more than
    the one update its card is about (``dropped`` later iterations); the default shows a
    question box. Tests replace it.
    """

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._controller = controller
        self.confirm = self._ask_to_go_back
        self._record: StepRecord | None = None
        self._drawn_signature = None
        # What each fix's settings did when tried: a Trial, a note why it was not tried, or
        # None when the trial failed; for the images of ``_trials_of``. One trial runs at a
        # time, in a process of its own.
        self._trials: dict = {}
        self._trials_of = controller.dataset
        self._worker = TrialWorker()
        self._trying = None  # the settings of the trial in progress (None: none is)
        self._trying_dataset = None  # on these images
        self._trial_stopped = False  # asked to stop: its answer is of no use
        self._trial_delay = QTimer(self)
        self._trial_delay.setSingleShot(True)
        self._trial_delay.setInterval(TRIAL_DELAY_MS)
        self._trial_delay.timeout.connect(lambda: self._try_fixes(start=True))
        self._trial_poll = QTimer(self)
        self._trial_poll.setInterval(TRIAL_POLL_MS)
        self._trial_poll.timeout.connect(self._check_trial)
        # The trials' process ends when nothing has been tried for a while (memory).
        self._worker_idle = QTimer(self)
        self._worker_idle.setSingleShot(True)
        self._worker_idle.setInterval(WORKER_IDLE_MS)
        self._worker_idle.timeout.connect(lambda: self._worker.close())
        self._closed = False

        outer = QVBoxLayout(self)
        outer.setContentsMargins(4, 4, 4, 4)
        self.banner = QLabel()
        self.banner.setObjectName("diagnosticsBanner")
        self.banner.setWordWrap(True)
        self.banner.setStyleSheet(
            "background: #b2182b; color: white; padding: 6px; border-radius: 3px;font-weight: bold;"
        )
        self.banner.hide()
        outer.addWidget(self.banner)
        self.summary = QLabel()
        self.summary.setObjectName("diagnosticsSummary")
        self.summary.setWordWrap(True)
        outer.addWidget(LayoutGuard(self.summary, self))

        self._list = QWidget()
        self._list_layout = QVBoxLayout(self._list)
        self._list_layout.setContentsMargins(0, 0, 0, 0)
        self._list_layout.setSpacing(8)
        self._list_layout.addStretch(1)
        self._scroll = scroll_area(self._list, across=False)
        outer.addWidget(self._scroll, 1)

        self._refresh = QTimer(self)
        self._refresh.setSingleShot(True)
        self._refresh.setInterval(RUNNING_REFRESH_MS)
        self._refresh.timeout.connect(self._draw)

        controller.record_shown.connect(self.show_record)
        # A live setting changed: a fix it makes useless (or useful) goes (or comes back).
        controller.config_changed.connect(self._on_config_changed)
        controller.session_reset.connect(self._on_reset)
        controller.paused_by_finding.connect(self._on_paused)
        controller.running_changed.connect(self._on_running_changed)
        # Fixes are not tried while images load or a run starts; the record of a new dataset
        # arrives before its load has ended, so they are tried once it has (a review found
        # "Trying it…" for good after Data → Open folder).
        controller.loading_changed.connect(self._on_busy_changed)
        controller.run_starting.connect(self._on_busy_changed)
        self.show_record(controller.shown)

    @property
    def cards(self) -> list[FindingCard]:
        """The finding cards currently shown, top to bottom."""
        layout = self._list_layout
        return [layout.itemAt(i).widget() for i in range(layout.count() - 1)]

    @Slot(object)
    def show_record(self, record: StepRecord) -> None:
        self._record = record
        if self._controller.is_running:
            if not self._refresh.isActive():
                self._refresh.start()
        else:
            self._draw()

    def _draw(self) -> None:
        self._draw_cards()
        if not self._controller.is_running:
            self._try_fixes()

    def _draw_cards(self) -> None:
        record = self._record
        if record is None:
            return
        # Fixes that would change nothing in the settings in use, or make the same run as one
        # above them on their card, are left out.
        findings = merge_alike(
            useful_fixes(sort_findings(record.findings), self._controller.config)
        )
        if record.iteration == 0 and self._controller.latest_iteration > 0:
            # Iteration 0 looked at after training: "now" is the latest iteration, not this one.
            findings = [_said_of_iteration_0(f) for f in findings]
        signature = (
            record.iteration,
            tuple((f.title, f.explanation, tuple(x.label for x in f.fixes)) for f in findings),
        )
        if signature == self._drawn_signature:
            return
        self._drawn_signature = signature
        cards = self.cards
        if len(cards) == len(findings) and all(
            c.matches(f) for c, f in zip(cards, findings, strict=True)
        ):
            # The same findings with new numbers (every frame while training): update texts.
            for card, finding in zip(cards, findings, strict=True):
                card.update_finding(finding)
        else:
            for card in cards:
                self._list_layout.removeWidget(card)
                card.deleteLater()
            for position, finding in enumerate(findings):
                card = FindingCard(finding, self._apply_fix, self._list)
                self._list_layout.insertWidget(position, card)
        self.summary.setText(self._summary_text(record, findings))

    @Slot(object)
    def _on_config_changed(self, _config) -> None:
        if self._record is not None and not self._controller.is_running:
            self._draw()

    # -- trying the fixes --------------------------------------------------------------------

    @property
    def is_trying(self) -> bool:
        """Whether a fix is being tried (in the trials' process)."""
        return self._trying is not None

    def _try_fixes(self, *, start: bool = False) -> None:
        """Say under each fix that starts a fresh run what that run did when tried; with
        ``start``, start trying the first fix not tried yet, else (settings or cards changed)
        after ``TRIAL_DELAY_MS`` of quiet: a learning rate dragged on its slider makes a new
        set of settings to try at every step (a review). A trial nobody needs any more is
        stopped. Trials run in a process of their own (``model.trial.TrialWorker``)."""
        c = self._controller
        if c.dataset is not self._trials_of:
            self._trials.clear()
            self._trials_of = c.dataset
        needed, untried = set(), None
        for card in self.cards:
            for fix, button in zip(card.finding.fixes, card.fix_buttons, strict=True):
                config = trial_config(c.config, fix, c.latest_iteration)
                # (Settings hold dicts, so they are kept by their repr, which says them all.)
                key = repr(config)
                if config is not None:
                    needed.add(key)
                    if key not in self._trials:
                        if trial_work(c.dataset, config) > MAX_TRIAL_WORK:
                            self._trials[key] = TOO_LARGE
                        elif untried is None:
                            untried = config
                trial = self._trials.get(key)
                if isinstance(trial, Trial):
                    note = trial.describe()
                elif config is not None and key not in self._trials:
                    note = TRYING
                else:  # not tried (a short note says why), or it failed (none)
                    note = trial or ""
                button.set_note(note)
        if self.is_trying and (
            repr(self._trying) not in needed or self._trying_dataset is not c.dataset
        ):
            self._stop_trial()
        if untried is None or self._closed or c.is_running or c.is_loading or c.is_starting:
            self._trial_delay.stop()
        elif not self.is_trying and start:
            self._start_trial(c.dataset, untried)
        elif not self.is_trying:
            self._trial_delay.start()
        self._end_worker_when_idle()

    def _end_worker_when_idle(self) -> None:
        """The trials' process ends after WORKER_IDLE_MS with no trial (a review found it kept
        through a whole run when Run was pressed mid-trial)."""
        if self.is_trying or not self._worker.started:
            self._worker_idle.stop()
        elif not self._worker_idle.isActive():
            self._worker_idle.start()

    def _start_trial(self, dataset, config) -> None:
        try:
            self._worker.submit(dataset, config, TRIAL_SECONDS)
        except (OSError, ValueError) as exc:  # no process could start, or the pipe broke
            log_error("Trying a fix", f"{type(exc).__name__}: {exc}")
            self._trials[repr(config)] = None  # (no note; the others are still tried)
            self._worker.close()
            self._trial_delay.start()
            return
        self._trying, self._trying_dataset = config, dataset
        self._trial_stopped = False
        self._trial_poll.start()

    def _stop_trial(self) -> None:
        """The trial in progress stops at its next update (its answer is then dropped)."""
        if self.is_trying:
            self._trial_stopped = True
            self._worker.stop()

    @Slot()
    def _check_trial(self) -> None:
        reply = self._worker.poll() if self.is_trying else None
        if reply is None:
            return
        self._trial_poll.stop()
        config, self._trying = self._trying, None
        same_images = self._trying_dataset is self._trials_of
        done = not self._trial_stopped
        kind, answer = reply
        if kind == "done":
            trial, too_slow = answer
            if done and same_images and (trial is not None or too_slow):
                self._trials[repr(config)] = trial if trial is not None else TOO_SLOW
        elif same_images:
            # The trial failed (memory ran out), or its process ended ("ended": a new one
            # tries the others). A run that overflows is an outcome, not a failure. The fix
            # keeps no note and is not tried again on these images.
            self._trials[repr(config)] = None
        if not self._closed and not self._controller.is_running:
            # The next at once when nothing changed meanwhile, else after the quiet delay.
            self._try_fixes(start=done)
        self._end_worker_when_idle()

    def shutdown(self) -> None:
        """Stop trying fixes (window closing): the trials' process ends after its next update."""
        self._closed = True
        for timer in (self._refresh, self._trial_delay, self._trial_poll, self._worker_idle):
            timer.stop()
        self._trying = None
        self._worker.close()

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.shutdown()
        super().closeEvent(event)

    @staticmethod
    def _summary_text(record: StepRecord, findings: list[Finding]) -> str:
        if not findings:
            return f"✓ Nothing wrong found at iteration {record.iteration}."
        counts = {s: sum(f.severity == s for f in findings) for s in SEVERITY_STYLE}
        parts = [
            f"{n} {SEVERITY_STYLE[s][2].lower()}{'s' if n != 1 else ''}"
            for s, n in counts.items()
            if n
        ]
        return f"Iteration {record.iteration}: {', '.join(parts)}."

    def _apply_fix(self, fix) -> None:
        controller = self._controller
        controller.pause()  # (counted and asked of a run that stands still)
        if fix.rewind_to is not None and not fix.needs_reset:
            # Going back past more than the update the card is about drops training the
            # user did since (asked, as "Continue from here" asks).
            dropped = controller.latest_iteration - fix.rewind_to
            if dropped > 1 and not self.confirm(fix, dropped):
                return
        self.banner.hide()
        controller.apply_fix(fix)

    def _ask_to_go_back(self, fix, dropped: int) -> bool:
        return dialogs.ask_to_drop_later(
            self,
            fix.rewind_to,
            dropped,
            "Go back to apply the fix?",
            f"{fix.label}?",
            "Training then goes on from there with the new setting.",
        )

    @Slot(object)
    def _on_reset(self, record: StepRecord) -> None:
        self.banner.hide()
        self._drawn_signature = None
        self.show_record(record)

    @Slot(object)
    def _on_paused(self, finding: Finding) -> None:
        self.banner.setText(f"Run paused at iteration {finding.iteration}: {finding.title}")
        self.banner.show()

    @Slot(bool)
    def _on_busy_changed(self, busy: bool) -> None:
        if not busy and not self._closed:
            self._try_fixes()

    @Slot(bool)
    def _on_running_changed(self, running: bool) -> None:
        if running:
            self.banner.hide()
            self._stop_trial()  # (tried again once the run stops)
        else:
            self._refresh.stop()
            self._draw()
