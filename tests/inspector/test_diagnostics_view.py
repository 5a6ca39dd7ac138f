"""The Diagnostics panel explains the shown iteration and applies fixes in one click."""

import pytest
from PySide6.QtCore import Qt

from inspector.views import diagnostics as diagnostics_view
from inspector.views.diagnostics import TRYING, DiagnosticsView
from model.presets import preset_config


@pytest.fixture
def view(qtbot, controller):
    widget = DiagnosticsView(controller)
    qtbot.addWidget(widget)
    widget.resize(330, 600)
    widget.show()
    qtbot.waitExposed(widget)
    return widget


def codes(view):
    return [card.finding.code for card in view.cards]


def click_fix(qtbot, view, code, text):
    card = next(c for c in view.cards if c.finding.code == code)
    button = next(b for b in card.fix_buttons if text in b.label_text())
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_before_training_the_risk_is_explained(view):
    assert codes(view)[0] == "first_update_kills"  # the most severe first
    assert {"raw_pixels", "init_all_positive"} <= set(codes(view))
    first = view.cards[0]
    assert "Pressing Step now will kill the filter" in first.finding.title
    assert "1 problem" in view.summary.text()


def test_iteration_0_looked_at_after_training_says_what_a_step_there_would_do(
    view, controller, step_and_wait, show_and_wait
):
    """A learner's review: back at iteration 0 after two Steps, the card still said "Pressing
    Step now will kill the filter", though Step goes on from iteration 2."""
    step_and_wait(controller, 2)
    show_and_wait(controller, 0)
    (card,) = [c for c in view.cards if c.finding.code == "first_update_kills"]
    assert card.finding.title == "Pressing Step at iteration 0 would kill the filter"
    controller.reset()  # a new run at iteration 0: "now" again
    (card,) = [c for c in view.cards if c.finding.code == "first_update_kills"]
    assert card.finding.title == "Pressing Step now will kill the filter"


def test_after_the_step_the_dead_filter_comes_first_with_its_cause(view, controller, step_and_wait):
    step_and_wait(controller)
    assert codes(view)[0] == "dead_filter"
    explanation = view.cards[0].finding.explanation
    assert "-learning rate × gradient = -0.5000 × [" in explanation


def test_a_run_paused_by_a_dying_filter_shows_the_banner(qtbot, view, controller):
    controller.set_speed(0)
    with qtbot.waitSignal(controller.paused_by_finding, timeout=10000):
        controller.run()
    qtbot.waitUntil(lambda: not controller.is_running, timeout=10000)
    assert view.banner.isVisible()
    assert "paused at iteration 1" in view.banner.text()


def test_an_init_fix_resets_with_the_new_setting(qtbot, view, controller, step_and_wait):
    step_and_wait(controller)
    click_fix(qtbot, view, "dead_filter", "N(0, 0.02)")
    assert controller.config.conv_init.kind == "normal"
    assert controller.config.conv_init.params["std"] == 0.02
    assert controller.latest_iteration == 0
    assert "dead_filter" not in codes(view)


def test_a_learning_rate_fix_rewinds_to_before_the_bad_update(
    qtbot, view, controller, step_and_wait
):
    asked = []
    view.confirm = lambda fix, dropped: asked.append((fix.rewind_to, dropped)) or True
    step_and_wait(controller)
    click_fix(qtbot, view, "dead_filter", "Divide the learning rate")
    # Going back over the one update that killed the filter: nothing else to lose, no question.
    assert controller.latest_iteration == 0 and not asked
    assert controller.config.learning_rate < 0.5
    assert controller.config.pixel_scaling == "raw"  # nothing else changed


def test_a_learning_rate_fix_keeps_settings_waiting_for_reset(
    qtbot, view, controller, step_and_wait
):
    """A review: with 4 filters waiting in Setup for Reset, the rate fix threw them away
    without a word. They now wait on, with the fix's rate."""
    view.confirm = lambda fix, dropped: True
    step_and_wait(controller)
    controller.request_config(controller.config.with_changes(num_filters=4))
    assert controller.pending_config.num_filters == 4
    click_fix(qtbot, view, "dead_filter", "Divide the learning rate")
    rate = controller.config.learning_rate
    assert rate < 0.5 and controller.latest_iteration == 0
    pending = controller.pending_config
    assert pending is not None
    assert (pending.num_filters, pending.learning_rate) == (4, rate)


def test_a_fix_that_drops_later_training_asks_first(qtbot, view, controller, step_and_wait):
    """A teacher clicked a card's "…, from iteration 24" at iteration 251: 227 iterations went
    without a word, while "Continue from here" asks."""
    answers, asked = [False, True], []

    def confirm(fix, dropped):
        asked.append((fix.rewind_to, dropped))
        return answers.pop(0)

    view.confirm = confirm
    step_and_wait(controller, times=3)
    click_fix(qtbot, view, "dead_filter", "Divide the learning rate")
    assert asked == [(0, 3)] and controller.latest_iteration == 3  # declined: all kept
    assert controller.config.learning_rate == 0.5
    click_fix(qtbot, view, "dead_filter", "Divide the learning rate")
    assert asked == [(0, 3), (0, 3)] and controller.latest_iteration == 0
    assert controller.config.learning_rate < 0.5


def test_a_fix_asked_of_a_running_run_counts_what_it_drops_once_paused(
    qtbot, view, controller, step_and_wait
):
    """A reviewer's case: asked while the run went on, the question said 5 iterations would
    be dropped; by the answer there were 24."""
    step_and_wait(controller)  # filter 0 dies at iteration 1
    controller.set_speed(20)
    controller.run_steps(10_000)
    qtbot.waitUntil(lambda: controller.latest_iteration >= 3, timeout=10000)
    asked = []

    def confirm(fix, dropped):
        qtbot.wait(300)  # the user reads the question (the box runs an event loop)
        asked.append((dropped, controller.latest_iteration))
        return True

    view.confirm = confirm
    click_fix(qtbot, view, "dead_filter", "Divide the learning rate")
    ((dropped, latest),) = asked
    assert not controller.is_running and dropped == latest  # (back to iteration 0)
    assert controller.latest_iteration == 0


def test_a_learning_rate_changed_before_the_first_step_predicts_it_again(qtbot, view, controller):
    """The warning about the first update is remade with the learning rate it will use: its
    own fix no longer leaves it on screen, and the question's rate brings it back."""
    click_fix(qtbot, view, "first_update_kills", "Divide the learning rate")
    assert controller.config.learning_rate == pytest.approx(5e-8)
    qtbot.waitUntil(lambda: "first_update_kills" not in codes(view))
    assert controller.latest_iteration == 0
    assert {"raw_pixels", "init_all_positive"} <= set(codes(view))
    controller.update_live(learning_rate=0.5)
    qtbot.waitUntil(lambda: codes(view)[0] == "first_update_kills")
    assert "= -0.5000 ×" in view.cards[0].finding.explanation


def test_cards_fit_the_panel_width(qtbot, view, controller):
    qtbot.waitUntil(lambda: all(card.width() > 0 for card in view.cards))
    viewport = view._scroll.viewport().width()
    assert all(card.width() <= viewport for card in view.cards)
    assert all(b.width() <= viewport for card in view.cards for b in card.fix_buttons)


def test_healthy_iteration_says_nothing_is_wrong(qtbot, question_dataset):
    from inspector.controller import SessionController

    # Seed 9 starts with most of the filter alive; a small learning rate makes a small update.
    config = preset_config("recommended", seed=9, learning_rate=1e-3)
    ctrl = SessionController(question_dataset, config)
    widget = DiagnosticsView(ctrl)
    qtbot.addWidget(widget)
    assert ctrl.shown.findings == ()
    assert widget.cards == []
    assert widget.summary.text() == "✓ Nothing wrong found at iteration 0."
    ctrl.shutdown()


def test_a_lasting_finding_updates_its_card_in_place(view, controller, step_and_wait):
    step_and_wait(controller, times=2)
    card = view.cards[0]
    assert card.finding.code == "dead_filter" and card.finding.iteration == 2
    step_and_wait(controller)
    assert view.cards[0] is card  # same widgets, new numbers
    assert card.finding.iteration == 3
    assert "iteration 3" in card._stamp.text()


def test_a_new_iteration_stamp_does_not_lay_the_cards_out_again(
    qtbot, view, controller, step_and_wait, count_events
):
    """The stamp changes at every Step; the card around it keeps its layout (each layout pass
    measures every card's wrapped text again)."""
    from PySide6.QtCore import QEvent

    step_and_wait(controller, times=2)
    qtbot.wait(50)  # the layouts of the new cards settle
    card = view.cards[0]
    requests = count_events(card, QEvent.Type.LayoutRequest)
    step_and_wait(controller)
    qtbot.wait(50)
    assert "iteration 3" in card._stamp.text() and card._stamp.isVisible()
    assert requests.count == 0


def test_new_numbers_in_a_card_do_not_lay_the_panel_out_again(
    qtbot, question_dataset, step_and_wait, count_events
):
    """With 16 filters the mostly-dead card's shares change at every Step. New numbers on as
    many lines leave the card's layout, and the panel's, alone: before, each Step laid out
    the main window again and repainted all of it."""
    from PySide6.QtCore import QEvent

    from inspector.controller import SessionController

    ctrl = SessionController(question_dataset, preset_config("recommended", num_filters=16))
    widget = DiagnosticsView(ctrl)
    qtbot.addWidget(widget)
    widget.resize(320, 900)
    widget.show()
    step_and_wait(ctrl, times=4)  # from here on the same findings (filters 0, 1, 5, 10, ...)
    qtbot.wait(50)  # the layouts of the new cards settle
    card = next(c for c in widget.cards if c.finding.code == "mostly_dead")
    title, text = card._title.text(), card._text.text()
    lines = (card._title.heightForWidth(card._title.width()), card._text.height())
    requests = [count_events(w, QEvent.Type.LayoutRequest) for w in (card, widget)]
    step_and_wait(ctrl)
    qtbot.wait(50)
    assert card in widget.cards and card.finding.iteration == 5
    assert (card._title.text(), card._text.text()) != (title, text)  # new numbers shown
    # As many lines as before, so nothing around the card needs to move.
    assert (card._title.heightForWidth(card._title.width()), card._text.height()) == lines
    assert [r.count for r in requests] == [0, 0]
    ctrl.shutdown()


def test_dead_and_mostly_dead_filters_share_a_card_each(qtbot, question_dataset):
    """16 filters at iteration 0: two dead and six mostly dead. One card says which two are
    dead and one which six are mostly dead, not eight cards that differ in a number."""
    from inspector.controller import SessionController

    ctrl = SessionController(question_dataset, preset_config("recommended", num_filters=16))
    widget = DiagnosticsView(ctrl)
    qtbot.addWidget(widget)
    assert sum(f.code == "mostly_dead" for f in ctrl.shown.findings) == 6
    assert codes(widget) == ["dead_filter", "mostly_dead"]
    dead = widget.cards[0]
    assert dead._title.text() == "Filters 13 and 14 are dead (since iteration 0)"
    assert "They were dead from the start" in dead._text.text()
    assert dead._text.text().splitlines()[1].startswith("• Filter 13: largest pre-activation -")
    card = widget.cards[1]
    title = "Filters 0, 1, 5, 7, 11 and 15: most of their ReLU outputs are zero"
    assert card._title.text() == title
    assert card._text.text().startswith("• 98% of filter 0's ReLU outputs are zero\n")
    assert [b.label_text() for b in card.fix_buttons] == [
        f"Fix: {fix.label}" for fix in ctrl.shown.findings[2].fixes
    ]
    assert widget.summary.text() == "Iteration 0: 1 problem, 1 warning."
    ctrl.shutdown()


def test_cards_leave_out_fixes_that_change_nothing(qtbot, question_dataset):
    """The answer's fix with a rate of 0.5 was offered "Scale pixels to 0..1" and N(0, 0.02),
    which it had: clicking them started the run again as it was."""
    from inspector.controller import SessionController

    config = preset_config("recommended", learning_rate=0.5, num_filters=16)
    ctrl = SessionController(question_dataset, config)
    try:
        widget = DiagnosticsView(ctrl)
        qtbot.addWidget(widget)
        (kills,) = [c for c in widget.cards if c.finding.code == "first_update_kills"]
        labels = [b.label_text() for b in kills.fix_buttons]
        assert labels and all("learning rate" in label for label in labels)
    finally:
        ctrl.shutdown()


def test_a_live_change_that_makes_a_fix_useless_takes_its_button_away(
    qtbot, view, controller, step_and_wait
):
    """A review: the buttons were filtered when drawn, and not drawn again when a live
    setting changed. The question after its first update offers clipping at 1; set by hand,
    the card stops offering it (and a card going back keeps its rewind)."""
    step_and_wait(controller)

    def labels():
        return [b.label_text() for card in view.cards for b in card.fix_buttons]

    assert "Fix: Clip the gradient norm at 1" in labels()
    controller.update_live(clip_norm=1.0)
    assert not [text for text in labels() if text == "Fix: Clip the gradient norm at 1"]


def fix_notes(view) -> dict[str, str]:
    return {
        button.label_text().removeprefix("Fix: "): button.note_text()
        for card in view.cards
        for button in card.fix_buttons
    }


def test_each_fix_says_what_it_did_when_tried(qtbot, view, controller, step_and_wait):
    """A teacher's lecture went "now fix each cause on its own", and each alone failed in front
    of the class. Each button now says so before it is pressed: tried, in a fresh run of its
    settings."""
    qtbot.waitUntil(lambda: TRYING not in fix_notes(view).values(), timeout=20000)
    notes = fix_notes(view)
    whole = next(note for label, note in notes.items() if label.startswith("Apply the answer's"))
    assert whole.startswith("Tried: it learns, loss 0.6931 → ")
    assert notes["Initialise both layers with N(0, 0.02) and start again"] == (
        "Tried: the filter dies at iteration 2."
    )
    assert notes["Scale pixels to 0..1 and start again"] == "Tried: the filter dies at iteration 1."
    assert notes["Divide the learning rate by 1e+07 (→ 5e-08)"].startswith(
        "Tried for 100 iterations: not learned, accuracy 50%"
    )
    step_and_wait(controller)
    qtbot.waitUntil(lambda: TRYING not in fix_notes(view).values(), timeout=20000)
    notes = fix_notes(view)
    # Going back to iteration 0 with a smaller rate is the fresh run of that rate: tried too.
    assert notes["Divide the learning rate by 1e+07 (→ 5e-08), from iteration 0"].startswith(
        "Tried for 100 iterations: not learned"
    )
    assert notes["Use leaky ReLU (slope 0.01) and start again"].startswith(
        "Tried: the run overflows to NaN or infinity at iteration "
    )
    # A setting changed from the next update on is not a fresh run: not tried.
    assert notes["Clip the gradient norm at 1"] == ""


def test_the_trials_follow_the_settings_in_use(qtbot, view, controller):
    """A fix is tried on the settings it would change: the rate typed in by hand shows in the
    init-only fix's trial."""
    qtbot.waitUntil(lambda: TRYING not in fix_notes(view).values(), timeout=20000)
    controller.update_live(learning_rate=1e-4)
    qtbot.waitUntil(lambda: TRYING not in fix_notes(view).values(), timeout=20000)
    notes = fix_notes(view)
    assert notes["Initialise both layers with N(0, 0.02) and start again"].startswith(
        "Tried: it learns"
    )


def test_runs_too_large_to_try_in_a_moment_are_not_tried(qtbot, controller, monkeypatch):
    monkeypatch.setattr(diagnostics_view, "MAX_TRIAL_WORK", 0)
    widget = DiagnosticsView(controller)
    qtbot.addWidget(widget)
    assert set(fix_notes(widget).values()) == {diagnostics_view.TOO_LARGE}  # (says why)
    assert not widget.is_trying


class HeldTrials:
    """Stands in for the trials' process: each trial waits until ``stop`` (then ends with no
    answer) or the test gives it one (``answer``)."""

    def __init__(self) -> None:
        self.tried: list = []
        self.replies: list = []  # one per trial: None while it runs
        self.started = False
        self.closed = 0

    def submit(self, dataset, config, seconds) -> None:
        self.started = True
        self.tried.append(config)
        self.replies.append(None)

    def answer(self, reply) -> None:
        self.replies[-1] = reply

    def poll(self):
        return self.replies[-1] if self.replies else None

    def stop(self) -> None:
        if self.replies and self.replies[-1] is None:
            self.replies[-1] = ("done", (None, False))

    def close(self) -> None:
        self.stop()
        self.started = False
        self.closed += 1


def held_panel(qtbot, controller) -> tuple[DiagnosticsView, HeldTrials]:
    widget = DiagnosticsView(controller)
    qtbot.addWidget(widget)
    held = widget._worker = HeldTrials()
    return widget, held


def test_a_trial_in_progress_ends_with_the_panel(qtbot, controller):
    widget, held = held_panel(qtbot, controller)
    qtbot.waitUntil(lambda: widget.is_trying, timeout=5000)  # the first fix
    widget.shutdown()
    assert not widget.is_trying and held.closed == 1
    assert held.replies[0] == ("done", (None, False))  # asked to stop


def test_trials_wait_for_settings_to_be_still_and_stop_when_not_needed(
    qtbot, make_controller, question_dataset
):
    """A review: dragging the rate's slider made a new set of settings to try at every step,
    each started at once, and a trial of settings gone kept running."""
    # The answer's fix at iteration 0: its one fix (leaky ReLU) is tried at the rate in use.
    controller = make_controller(question_dataset, preset_config("recommended"))
    widget, held = held_panel(qtbot, controller)
    for rate in (0.04, 0.03, 0.02):  # faster than the delay: nothing starts meanwhile
        controller.update_live(learning_rate=rate)
        qtbot.wait(diagnostics_view.TRIAL_DELAY_MS // 4)
        assert not widget.is_trying and held.tried == []
    qtbot.waitUntil(lambda: len(held.tried) == 1, timeout=5000)
    assert held.tried[0].learning_rate == 0.02
    controller.update_live(learning_rate=0.05)  # the settings tried are no longer any card's
    assert held.replies[0] == ("done", (None, False))  # stopped at once
    qtbot.waitUntil(lambda: len(held.tried) == 2, timeout=5000)
    assert held.tried[1].learning_rate == 0.05
    assert fix_notes(widget) == {"Use leaky ReLU (slope 0.01) and start again": TRYING}
    # Its answer comes: the button says it, and nothing more is tried.
    from model.trial import Trial

    answer = Trial("stuck", 100, 100, 2, 1, 0.5, 0.69, 0.69)
    held.answer(("done", (answer, False)))
    qtbot.waitUntil(lambda: not widget.is_trying, timeout=5000)
    assert fix_notes(widget) == {"Use leaky ReLU (slope 0.01) and start again": answer.describe()}
    assert len(held.tried) == 2
    widget.shutdown()


def test_a_trial_that_fails_or_whose_process_ends_leaves_no_note_and_the_rest_go_on(
    qtbot, controller
):
    """A review killed the trials' process: later trials must still be tried."""
    widget, held = held_panel(qtbot, controller)
    qtbot.waitUntil(lambda: len(held.tried) == 1, timeout=5000)
    for reply in (("error", "MemoryError: "), ("ended", "")):
        failed = held.tried[-1]
        held.answer(reply)
        qtbot.waitUntil(lambda f=failed: held.tried[-1] is not f, timeout=5000)
        assert repr(failed) in widget._trials and widget._trials[repr(failed)] is None
    widget.shutdown()


def test_fixes_are_tried_once_a_new_folder_has_loaded(qtbot, controller):
    """A review: after Data → Open folder every fix said "Trying it…" for good (the new
    dataset's record came while its load was still going, when no trial may start)."""
    from model.data import example_path
    from model.trial import Trial

    widget, held = held_panel(qtbot, controller)
    answer = Trial("stuck", 100, 100, 2, 1, 0.5, 0.69, 0.69)
    while True:  # every fix tried: nothing runs any more
        qtbot.waitUntil(
            lambda: widget.is_trying or TRYING not in fix_notes(widget).values(), timeout=5000
        )
        if not widget.is_trying:
            break
        tried = len(held.tried)
        held.answer(("done", (answer, False)))
        qtbot.waitUntil(lambda n=tried: len(held.tried) > n or not widget.is_trying, timeout=5000)
    tried = len(held.tried)
    controller.load_folder(str(example_path("question")))
    qtbot.waitUntil(lambda: controller.dataset is widget._trials_of, timeout=10000)
    qtbot.waitUntil(lambda: not controller.is_loading, timeout=10000)
    # Tried on the new dataset once loaded: the first of its fixes starts.
    qtbot.waitUntil(lambda: len(held.tried) == tried + 1, timeout=5000)
    assert widget._trying_dataset is controller.dataset
    widget.shutdown()


def test_a_trial_that_cannot_start_leaves_no_note_and_the_rest_go_on(qtbot, controller):
    widget, held = held_panel(qtbot, controller)
    refused = []

    def submit(dataset, config, seconds):
        if not refused:
            refused.append(config)
            raise OSError("no process could start")
        HeldTrials.submit(held, dataset, config, seconds)

    held.submit = submit
    qtbot.waitUntil(lambda: len(held.tried) == 1, timeout=5000)
    assert held.tried[0] is not refused[0] and widget._trials[repr(refused[0])] is None
    widget.shutdown()


def test_the_trials_process_ends_when_idle_even_after_a_run(
    qtbot, controller, monkeypatch, step_and_wait
):
    """A review: Run pressed during a trial kept the process through the whole run."""
    monkeypatch.setattr(diagnostics_view, "WORKER_IDLE_MS", 100)
    widget, held = held_panel(qtbot, controller)
    qtbot.waitUntil(lambda: widget.is_trying, timeout=5000)
    step_and_wait(controller)  # stops the trial; a Step's run is over at once
    qtbot.waitUntil(lambda: not widget.is_trying, timeout=5000)
    controller.run()  # a long run: nothing is tried meanwhile
    qtbot.waitUntil(lambda: held.closed >= 1, timeout=5000)
    assert controller.is_running
    controller.pause()
    widget.shutdown()


def test_a_trial_too_slow_is_stopped_and_leaves_no_note(qtbot, controller, monkeypatch):
    """In the trials' own process: every trial runs out of time at once here."""
    monkeypatch.setattr(diagnostics_view, "TRIAL_SECONDS", 0.0)
    widget = DiagnosticsView(controller)
    qtbot.addWidget(widget)
    qtbot.waitUntil(lambda: TRYING not in fix_notes(widget).values(), timeout=30000)
    assert set(fix_notes(widget).values()) == {diagnostics_view.TOO_SLOW}  # not tried, and why
    qtbot.wait(2 * diagnostics_view.TRIAL_DELAY_MS)
    assert not widget.is_trying  # and not tried again
    widget.shutdown()
    assert not widget._worker.started  # the process ended with the panel


def test_the_status_bar_says_the_whole_fix_was_applied_in_plain_words(qtbot, view, controller):
    """It read "Applied: Apply the answer's whole fix: …" (a teacher's review)."""
    said = []
    controller.status_message.connect(said.append)
    click_fix(qtbot, view, "first_update_kills", "Apply the answer's whole fix")
    qtbot.waitUntil(lambda: bool(said), timeout=10000)
    assert said[-1].startswith("Applied the answer's whole fix: N(0, 0.02) weights")
    said.clear()
    click_fix(qtbot, view, "mostly_dead", "Use leaky ReLU")
    qtbot.waitUntil(lambda: bool(said), timeout=10000)
    assert said[-1] == "Applied: Use leaky ReLU (slope 0.01) and start again"


def test_a_trial_is_the_run_its_fix_starts(qtbot, controller, step_and_wait):
    """What a button says is what pressing it does: the run each fix starts through the
    controller is the run it was tried as (a review found no test comparing the two)."""
    import numpy as np

    from model.session import TrainingSession
    from model.trial import trial_config

    for label in ("Initialise both layers with N", "Divide the learning rate by 1e+07"):
        with qtbot.waitSignal(controller.session_reset, timeout=10000):
            controller.start_over(preset_config("seed"))
        step_and_wait(controller)
        (dead,) = [f for f in controller.shown.findings if f.code == "dead_filter"]
        (fix,) = [fix for fix in dead.fixes if fix.label.startswith(label)]
        tried = trial_config(controller.config, fix, controller.latest_iteration)
        controller.apply_fix(fix)  # (a new run, or back to iteration 0 with the new rate)
        qtbot.waitUntil(
            lambda: controller.latest_iteration == 0 and not controller.is_starting, timeout=10000
        )
        assert controller.config.with_changes(history_budget_mb=tried.history_budget_mb) == tried
        fresh = TrainingSession(controller.dataset, tried)
        for _ in range(3):
            expected = fresh.step()
            record = step_and_wait(controller)
            assert record.loss == expected.loss and record.dead_since == expected.dead_since
            assert np.array_equal(record.params["conv.weight"], expected.params["conv.weight"])
