"""Trying a fix before it is taken: each of the question's fixes on its own, as a teacher
tried them by hand, and which fixes can be tried at all."""

import numpy as np
import pytest

from model.data import load_example
from model.diagnostics import (
    Fix,
    fix_answer,
    fix_answer_standardized,
    fix_leaky_relu,
    fix_learning_rate,
)
from model.presets import preset_config
from model.session import TrainingSession
from model.sweep import CELL_HISTORY_MB
from model.trial import (
    MAX_TRIAL_WORK,
    TRIAL_ITERATIONS,
    Trial,
    run_trial,
    trial_config,
    trial_work,
)


@pytest.fixture(scope="module")
def fixes_after_the_first_step(question):
    """The question's first update: every fix its cards offer, by label."""
    session = TrainingSession(question, preset_config("seed"))
    record = session.step()
    return session, {fix.label: fix for f in record.findings for fix in f.fixes}


def tried(question, session, fix) -> Trial:
    config = trial_config(session.config, fix, session.iteration)
    assert config is not None, fix.label
    return run_trial(question, config)


def test_only_the_answers_recipes_learn_the_question(question, fixes_after_the_first_step):
    """A teacher's lecture: "now fix each cause on its own". N(0, 0.02) alone dies at
    iteration 2, pixels 0..1 alone at 1, the smaller rate alone does not learn, leaky ReLU
    overflows; only the answer's whole fix learns (and its variant with standardised pixels).
    The buttons say so before they are pressed."""
    session, fixes = fixes_after_the_first_step
    by_start = {label.split(" (")[0].split(":")[0]: fix for label, fix in fixes.items()}
    outcomes = {
        start: tried(question, session, fix)
        for start, fix in by_start.items()
        if trial_config(session.config, fix, session.iteration) is not None
    }
    whole = outcomes["Apply the answer's whole fix"]
    assert whole.outcome == "learned" and whole.accuracy == 1.0
    assert whole.loss < whole.initial_loss
    assert whole.describe().startswith("Tried: it learns, loss 0.6931 → ")
    assert f"both images right from iteration {whole.learned_at}." in whole.describe()

    # The same recipe with standardised pixels learns too, sooner.
    standardised = outcomes[fix_answer_standardized().label.split(" (")[0]]
    assert standardised.outcome == "learned" and standardised.accuracy == 1.0
    assert standardised.learned_at <= whole.learned_at

    init = outcomes["Initialise both layers with N(0, 0.02) and start again"]
    assert (init.outcome, init.died_at) == ("dead filter", 2)
    assert init.describe() == "Tried: the filter dies at iteration 2."
    pixels = outcomes["Scale pixels to 0..1 and start again"]
    assert (pixels.outcome, pixels.died_at) == ("dead filter", 1)

    rate = outcomes["Divide the learning rate by 1e+07"]
    assert rate.outcome == "stuck" and rate.iterations_run == TRIAL_ITERATIONS
    assert rate.describe().startswith(
        f"Tried for {TRIAL_ITERATIONS} iterations: not learned, accuracy 50%, loss "
    )
    leaky = outcomes["Use leaky ReLU"]
    assert leaky.outcome == "diverged" and 1 <= leaky.diverged_at <= TRIAL_ITERATIONS
    assert leaky.describe() == (
        f"Tried: the run overflows to NaN or infinity at iteration {leaky.diverged_at}."
    )


def test_standardised_pixels_learn_the_question_on_every_seed_the_answer_does_not(question):
    """Why the answer's fix is offered again with standardised pixels: with pixels 0..1 no
    input is negative and on some seeds the filter still dies; zero-centred inputs learned on
    all 8 seeds (the answer's fix: the filter dies on 2 of them)."""
    seed_config = preset_config("seed")
    answer, standardised = [], []
    for seed in range(8):
        for fix, outcomes in ((fix_answer(), answer), (fix_answer_standardized(), standardised)):
            config = trial_config(seed_config.with_changes(seed=seed), fix, 1)
            outcomes.append(run_trial(question, config).outcome)
    assert standardised == ["learned"] * 8
    assert answer.count("dead filter") == 2 and answer.count("learned") == 5


def test_on_larger_sets_the_note_gives_the_level_held_and_the_last_share():
    """A review: "98% of the images right from iteration 7" paired the last iteration's share
    with the iteration the 95% level was first held from."""
    trial = Trial("learned", 100, 100, 80, 8, 0.98, 0.1, 0.7, 0.95, 7)
    assert trial.describe() == (
        "Tried: it learns, loss 0.7000 → 0.1000 in 100 iterations, at least 95% of the images "
        "right from iteration 7 (98% at the end)."
    )


def test_images_right_from_the_start_are_not_said_to_be_learned(question):
    """N(0, 0.02) at a tiny rate: the initial weights have both images right and the loss
    barely moves. That is the initial weights' luck, not learning."""
    recommended = preset_config("recommended")
    config = preset_config("seed").with_changes(
        learning_rate=1e-7,
        conv_init=recommended.conv_init,
        classifier_init=recommended.classifier_init,
    )
    trial = run_trial(question, config)
    assert (trial.outcome, trial.learned_at) == ("learned", 0)
    assert trial.describe().startswith("Tried: both images right from the start, loss ")
    assert "learns" not in trial.describe()


def test_which_fixes_can_be_tried(question):
    config = preset_config("seed")
    reset = fix_leaky_relu()
    back_to_0 = fix_learning_rate(0.5, 10, rewind_to=0)
    back_to_3 = fix_learning_rate(0.5, 10, rewind_to=3)
    from_now = fix_learning_rate(0.5, 10)
    tried_config = trial_config(config, reset, 7)
    assert tried_config == config.with_changes(
        activation="leaky_relu", history_budget_mb=CELL_HISTORY_MB
    )
    assert trial_config(config, back_to_0, 7).learning_rate == pytest.approx(0.05)
    assert trial_config(config, back_to_3, 7) is None  # needs the run's own past
    assert trial_config(config, from_now, 7) is None  # applies from iteration 8 on
    assert trial_config(config, from_now, 0).learning_rate == pytest.approx(0.05)
    assert trial_config(config, Fix("Nothing", {}), 0) is None
    refused = Fix("A rate of -1", {"learning_rate": -1.0}, rewind_to=0)
    assert trial_config(config, refused, 3) is None


def test_the_work_of_a_trial_counts_pixels_filters_and_iterations(question):
    config = preset_config("seed", num_filters=4)
    assert trial_work(question, config, 10) == 2 * 32 * 32 * 4 * 3 * 9 * 10
    # The kernel counts (a review: 15×15 kernels took 40 s under a guard that left them out).
    wide = config.with_changes(kernel_size=7, padding="valid")
    assert trial_work(question, wide, 10) == 2 * 26 * 26 * 4 * 3 * 49 * 10
    shapes = load_example("shapes")
    assert trial_work(shapes, preset_config("shapes")) < MAX_TRIAL_WORK
    assert trial_work(shapes, preset_config("shapes", kernel_size=7)) > MAX_TRIAL_WORK


def test_a_trial_stopped_early_says_nothing(question):
    calls = []

    def stop() -> bool:
        calls.append(1)
        return len(calls) > 3

    assert run_trial(question, preset_config("recommended"), should_stop=stop) is None


def test_the_trials_process_tries_stops_and_ends(question):
    """model.trial.TrialWorker: one trial at a time in a process of its own."""
    import time

    from model.trial import TrialWorker

    def reply_of(worker, seconds=30.0):
        deadline = time.monotonic() + seconds
        while (reply := worker.poll()) is None:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        return reply

    worker = TrialWorker()
    try:
        config = trial_config(preset_config("seed"), fix_leaky_relu(), 0)
        worker.submit(question, config, 30.0)
        with pytest.raises(RuntimeError):
            worker.submit(question, config, 30.0)  # one at a time
        kind, (trial, too_slow) = reply_of(worker)
        assert kind == "done" and not too_slow
        assert trial.describe() == run_trial(question, config).describe()
        # Too slow: stopped, no trial.
        worker.submit(question, config, 0.0)
        assert reply_of(worker) == ("done", (None, True))
        # Its process gone while idle: the next trial has a new one.
        process = worker._process
        process.kill()
        process.join(5)
        worker.submit(question, config, 30.0)
        assert reply_of(worker)[0] == "done" and worker._process is not process
        # Killed during a trial (here while it starts): said so, and the next has a new one.
        worker.submit(question, config, 30.0)
        process = worker._process
        process.kill()
        process.join(5)
        assert reply_of(worker) == ("ended", "") and not worker.started
        worker.submit(question, config, 30.0)
        assert reply_of(worker)[0] == "done"
    finally:
        process = worker._process
        worker.close()
    assert not process.is_alive() and not worker.started


def test_the_trials_process_ends_with_the_process_that_started_it(tmp_path):
    """A review killed the window's process: a pool's idle worker was left running for good.
    The trials' process reads a pipe only its parent holds the other end of."""
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import sys, time\n"
        "from model.data import load_example\n"
        "from model.presets import preset_config\n"
        "from model.trial import TrialWorker\n"
        "if __name__ == '__main__':\n"
        "    worker = TrialWorker()\n"
        "    worker.submit(load_example('question'), preset_config('recommended'), 30.0)\n"
        "    while worker.poll() is None:\n"
        "        time.sleep(0.01)\n"
        "    print(worker._process.pid, flush=True)\n"
        "    time.sleep(60)\n",
        encoding="utf-8",
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    parent = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": root},
    )
    try:
        child = int(parent.stdout.readline())
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            os.kill(child, signal.SIGKILL)
            raise AssertionError("the trials' process outlived its parent")
    finally:
        parent.kill()


def test_a_run_that_got_every_image_right_and_lost_one_says_so():
    """A learner's 12 images: the whole fix had all right at iteration 81 and 11 of 12 at
    iteration 100; "not learned, accuracy 92%" read as "this fix does not work here"."""
    trial = Trial("stuck", 100, 100, 12, 1, 11 / 12, 0.2107, 0.6931, best_accuracy=1.0, best_at=81)
    assert trial.describe() == (
        "Tried for 100 iterations: not learned, accuracy 92% (100% at iteration 81), loss "
        "0.6931 → 0.2107."
    )


def test_the_best_accuracy_of_a_stuck_trial_is_its_first_highest():
    from model.data import Dataset

    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (6, 3, 8, 8)).astype(np.uint8)
    noise = Dataset(images, np.array([0, 1] * 3), ("a", "b"), tuple("uvwxyz"))
    config = preset_config("recommended", learning_rate=0.1, seed=2)
    trial = run_trial(noise, config, iterations=30)
    session = TrainingSession(noise, config)
    session.run(30, pause_on_findings=False)
    accuracy = session.history.metrics.column("accuracy")
    assert trial.outcome == "stuck" and accuracy[-1] < accuracy.max() == 1.0
    assert (trial.best_accuracy, trial.best_at) == (1.0, int(np.argmax(accuracy)))
    assert f"(100% at iteration {trial.best_at})" in trial.describe()
    # Right at iteration 0 by the initial weights' luck is not a best of the trial's.
    lucky = run_trial(noise, config.with_changes(learning_rate=0.03, seed=1), iterations=30)
    assert lucky.outcome == "stuck" and "at iteration 0)" not in lucky.describe()
    assert lucky.best_at is None or lucky.best_at > 0


def test_a_level_that_only_all_images_reach_is_said_as_all_of_them():
    trial = Trial("learned", 100, 100, 12, 1, 1.0, 0.1256, 0.6901, 0.95, 98)
    assert trial.describe() == (
        "Tried: it learns, loss 0.6901 → 0.1256 in 100 iterations, all 12 right from iteration 98."
    )
