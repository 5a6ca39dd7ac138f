"""The training session: determinism, the question's failure, the fix, branching, history."""

import warnings

import numpy as np
import pytest

from model.config import TrainingConfig
from model.data import Dataset, load_example
from model.diagnostics import (
    Finding,
    Fix,
    fix_answer_standardized,
    merge_alike,
    sort_findings,
    useful_fixes,
)
from model.formatting import format_number, format_range
from model.init import InitSpec
from model.presets import preset_config
from model.record import NO_PREDICTION, predicted_labels
from model.session import Interrupted, TrainingSession, batch_indices


@pytest.fixture(scope="module")
def shapes():
    return load_example("shapes")


def assert_same_record(a, b):
    assert a.iteration == b.iteration
    for group in ("params", "grads", "update", "velocity", "conv_before"):
        left, right = getattr(a, group), getattr(b, group)
        assert (left is None) == (right is None), group
        if left is not None:
            assert left.keys() == right.keys()
            for key in left:
                np.testing.assert_array_equal(left[key], right[key], err_msg=f"{group} {key}")
    np.testing.assert_array_equal(a.losses, b.losses)
    np.testing.assert_array_equal(a.pre_activation, b.pre_activation)
    np.testing.assert_array_equal(a.activation, b.activation)
    assert a.dead_since == b.dead_since
    assert a.batch == b.batch
    assert [f.to_dict() for f in a.findings] == [f.to_dict() for f in b.findings]
    assert {k: v for k, v in a.metrics.items()} == pytest.approx(
        dict(b.metrics), nan_ok=True, rel=0
    )


# -- the question's failure and the answer's fix ----------------------------------------------


def test_seed_preset_reproduces_the_question(question):
    session = TrainingSession(question, preset_config("seed"))
    initial = session.latest
    assert initial.params["conv.weight"].min() >= 0
    assert initial.logits.min() > 1e5  # raw pixels × positive weights
    codes = {f.code for f in initial.findings}
    assert {"init_all_positive", "raw_pixels", "first_update_kills"} <= codes

    first = session.step()
    weights = first.params["conv.weight"]
    # The question saw -49,678 to -61,932 after one iteration: tens of thousands negative.
    assert -1e5 < weights.min() and weights.max() < -1e4
    assert first.dead_fraction == 1.0
    assert first.dead_since == (1,)
    dead = [f for f in first.findings if f.code == "dead_filter"]
    assert dead and dead[0].pauses and dead[0].since == 1
    # The ends in step: -0.5 × the smallest gradient is the smaller (less negative) update.
    grad, update = first.grads["conv.weight"][0], first.update["conv.weight"][0]
    assert (
        f"-learning rate × gradient = -0.5000 × {format_range(grad.min(), grad.max())} = "
        f"[{format_number(update.max())}, {format_number(update.min())}]" in dead[0].explanation
    )

    (right,) = [f for f in initial.findings if f.code == "saturated_right"]
    assert right.title == "1 image classified with a saturated sigmoid"
    assert right.explanation.startswith("Its logit is so large")  # (not "Their logits")
    # The loss fell a millionfold as the filter died: said to be no learning.
    (fell,) = [f for f in first.findings if f.code == "loss_fell_dead"]
    assert fell.title == "The loss fell from 947,260.7 to 0.7241, but not by learning"
    assert "every image gets the same logit, the classifier's bias -0.5000" in fell.explanation
    assert "Accuracy is 50%" in fell.explanation
    assert first.logits.tolist() == [-0.5, -0.5]  # (the bias alone, exactly)

    for _ in range(20):
        record = session.step()
        assert "loss_fell_dead" not in {f.code for f in record.findings}
        assert record.dead_fraction == 1.0
        # A dead filter's gradient is exactly zero: it can never move again.
        assert not np.any(record.grads["conv.weight"])
        np.testing.assert_array_equal(record.params["conv.weight"], weights)
    assert record.dead_since == (1,)
    later = [f for f in record.findings if f.code == "dead_filter"][0]
    assert not later.pauses
    assert "The update that killed it, at iteration 1" in later.explanation


def test_a_probability_that_is_not_a_number_is_no_prediction_and_never_right(question):
    """A review: with every probability NaN (a diverged float32 run) the cross was marked
    right and the accuracy read 50%: NaN >= 0.5 is False, which read as label 0."""
    config = preset_config("seed", activation="identity", dtype="float32", learning_rate=1e12)
    session = TrainingSession(question, config)
    session.run(8, pause_on_findings=False)
    record = session.latest
    assert np.isnan(record.probabilities).all()
    assert record.predictions.tolist() == [NO_PREDICTION, NO_PREDICTION]
    assert record.accuracy == 0.0
    assert predicted_labels(np.array([0.2, 0.5, np.nan, 0.9])).tolist() == [0, 1, -1, 1]


def test_an_accuracy_won_by_a_hair_is_said_to_be_chance(question):
    """The answer's fix starts with logits of about ±0.0003: both images are on the right side
    of 0.5 and the accuracy reads 100%, which a learner took for learned."""
    session = TrainingSession(question, preset_config("recommended"))
    start = session.latest
    (chance,) = [f for f in start.findings if f.code == "at_chance"]
    assert start.accuracy == 1.0
    assert chance.severity == "info"
    assert chance.title == "Accuracy 100%, but only by a hair"
    assert "within 0.01 of 0.5" in chance.explanation
    assert "Watch the loss instead: 0.6931 now" in chance.explanation
    # Once the probabilities move apart, it is learning, and nothing is said.
    for _ in range(50):
        record = session.step()
    assert record.accuracy == 1.0
    assert "at_chance" not in {f.code for f in record.findings}
    # A dead filter gives every image the same logit: its own cards say so, not this one.
    dead = TrainingSession(question, preset_config("seed")).step()
    assert "at_chance" not in {f.code for f in dead.findings}


@pytest.mark.parametrize("pixels", ["unit", "raw"])
def test_an_initialisation_that_overflows_is_fixed_by_a_smaller_one_not_by_the_rate(
    question, pixels
):
    """Weights of 1e20 in float32 overflow the logits before any update: the NaN cards
    offered ÷100 (from iteration 0, the overflow itself), click after click."""
    spec = InitSpec("normal", {"mean": 0.0, "std": 1e20})
    config = preset_config(
        "recommended", dtype="float32", pixel_scaling=pixels, conv_init=spec, classifier_init=spec
    )
    with np.errstate(all="ignore"):
        session = TrainingSession(question, config)
        start = session.latest
        after = session.step()
        later = [session.step() for _ in range(3)]  # (a review: iteration 2 said it again)
    small = "Initialise both layers with N(0, 0.02) and start again"
    whole = (
        ["Apply the answer's whole fix", fix_answer_standardized().label] if pixels == "raw" else []
    )
    largest = max(
        float(np.max(np.abs(start.params[k]))) for k in ("conv.weight", "classifier.weight")
    )
    (first,) = [f for f in start.findings if f.code == "non_finite"]
    assert f"the largest filter or classifier weight {format_number(largest)})" in first.explanation
    for record, said in (
        (start, "is not a finite number"),
        *((step, "at iteration 0") for step in (after, *later)),
    ):
        cards = {f.code: f for f in useful_fixes(record.findings, config)}
        card = cards["non_finite"]
        assert said in card.explanation and "no learning rate helps" in card.explanation
        assert "the initialisation is far too large" in card.explanation
        labels = [fix.label for fix in card.fixes]
        assert [label.split(":")[0] for label in labels[:-1]] == whole and labels[-1] == small
    preview = {f.code: f for f in start.findings}["first_update_kills"]
    assert not any("learning rate by" in fix.label for fix in preview.fixes)


def test_before_any_update_a_mostly_dead_filter_is_not_blamed_on_the_rate(question):
    """The answer's fix starts with 98% of its outputs at 0: the card offered to divide its
    learning rate, which learns, before any update was made (a newcomer pass)."""
    session = TrainingSession(question, preset_config("recommended"))
    (start,) = [f for f in session.latest.findings if f.code == "mostly_dead"]
    assert [fix.label for fix in start.fixes] == ["Use leaky ReLU (slope 0.01) and start again"]
    assert "No update has been made yet: the initial weights make it so." in start.explanation
    # Nor after its small updates, which revive it (a teacher's class was told to divide the
    # rate that learns by 10 at iterations 1 to 7, while What if called that rate "ok").
    for _ in range(7):
        record = session.step()
        (later,) = [f for f in record.findings if f.code == "mostly_dead"]
        assert [fix.label for fix in later.fixes] == ["Use leaky ReLU (slope 0.01) and start again"]
        largest = max(record.metrics[f"{layer}_update_ratio"] for layer in ("conv", "classifier"))
        assert (
            f"The last update was small (no layer's weights moved by more than "
            f"{format_number(largest)} of their size)" in later.explanation
        )
        assert largest < 0.1


def test_a_record_keeps_the_weights_before_its_update_exactly(question):
    """The question's update dwarfs the weights: after − update has lost their last digits
    (float32's spacing near 50,000 is 0.004), so the record keeps the weights before."""
    session = TrainingSession(question, preset_config("seed"))
    initial = session.latest
    assert initial.conv_before is None
    first = session.step()
    for key in ("conv.weight", "conv.bias"):
        np.testing.assert_array_equal(first.conv_before[key], initial.params[key])
    recovered = first.params["conv.weight"] - first.update["conv.weight"]
    assert np.any(recovered != initial.params["conv.weight"])
    second = session.step()
    np.testing.assert_array_equal(second.conv_before["conv.weight"], first.params["conv.weight"])


def test_the_cards_of_one_iteration_offer_one_learning_rate(question):
    """After the question's first update four cards suggest a learning rate; they used to ask
    for ÷1e+07, ÷1e+06 and ÷10 at once. One rate serves both layers: they now agree on the
    smallest, every card going back as far as the one that needs it most."""
    session = TrainingSession(question, preset_config("seed"))
    record = session.step()
    rate_fixes = {  # (the answer's whole fix sets a rate too, with the rest of the recipe)
        finding.code: [fix for fix in finding.fixes if set(fix.changes) == {"learning_rate"}]
        for finding in record.findings
    }
    assert {"dead_filter", "large_update", "large_gradient"} <= set(rate_fixes)
    rates = {fix.changes["learning_rate"] for fixes in rate_fixes.values() for fix in fixes}
    assert len(rates) == 1 and rates.pop() == pytest.approx(5e-8)
    ((dead_fix,),) = [rate_fixes["dead_filter"]]
    assert dead_fix.rewind_to == 0 and dead_fix.label.startswith(
        "Divide the learning rate by 1e+07"
    )
    # Every card goes back as far (the large gradient's went nowhere: a teacher's review).
    assert all(fix == dead_fix for fixes in rate_fixes.values() for fix in fixes)
    for finding in record.findings:  # (no card lists the same fix twice)
        labels = [fix.label for fix in finding.fixes]
        assert len(set(labels)) == len(labels)


def test_one_rate_goes_back_as_far_as_the_card_that_needs_it_most(question):
    """A teacher's case: N(0, 0.02), pixels 0..1, learning rate 0.5, five Steps. The dead
    filter's card offered "÷1000 (→ 0.0005), from iteration 1" and the classifier's card under
    it the same rate "from iteration 4", which cannot revive a filter dead since 2."""
    config = preset_config("recommended", learning_rate=0.5)
    session = TrainingSession(question, config)
    session.run(5, pause_on_findings=False)
    record = session.latest
    lowering = [fix for f in record.findings for fix in f.fixes if fix.lowers_rate]
    assert {f.code for f in record.findings if any(x.lowers_rate for x in f.fixes)} >= {
        "dead_filter",
        "large_update",
    }
    (dead,) = [f for f in record.findings if f.code == "dead_filter"]
    assert len({(fix.label, fix.rewind_to) for fix in lowering}) == 1
    assert lowering[0].rewind_to == dead.since - 1


def test_a_filter_dead_since_earlier_keeps_going_back_to_before_it_died(question):
    """A reviewer's case: with four filters at learning rate 1, filters die at iteration 1 and
    a later card asks for a smaller rate from iteration 1; the dead filters' cards must still
    go back to iteration 0, from where a smaller rate can save them."""
    session = TrainingSession(
        question, preset_config("recommended", learning_rate=1.0, num_filters=4)
    )
    session.run(2, pause_on_findings=False)
    record = session.latest
    dead = [f for f in record.findings if f.code == "dead_filter" and f.since == 1]
    assert dead
    for finding in dead:
        (fix,) = [fix for fix in finding.fixes if "learning_rate" in fix.changes]
        assert fix.rewind_to == 0
    rates = {
        fix.changes["learning_rate"]
        for finding in record.findings
        for fix in finding.fixes
        if "learning_rate" in fix.changes and fix.changes["learning_rate"] < 1.0
    }
    assert len(rates) == 1


def test_filters_killed_by_one_update_read_as_one_finding_with_each_ones_numbers(question):
    """The question's setup with four filters: all four die in the first update. The panel
    showed four error cards, alike but for the filter, above the update's own warnings."""
    session = TrainingSession(question, preset_config("seed", num_filters=4))
    first = session.step()
    dead = [f for f in first.findings if f.code == "dead_filter"]
    assert len(dead) == 4  # the record keeps one per filter (the log and headless files too)
    shown = merge_alike(sort_findings(first.findings))
    assert len(shown) == len(first.findings) - 3
    card = shown[0]
    assert (card.code, card.severity, card.since, card.pauses) == ("dead_filter", "error", 1, True)
    assert card.title == "Filters 0–3 are dead (since iteration 1)"
    assert card.subject == "filters 0, 1, 2, 3" and card.fixes == dead[0].fixes
    lines = card.explanation.splitlines()
    assert "The update of iteration 1 killed them" in lines[0]
    weights = first.params["conv.weight"]
    for f, line in enumerate(lines[1:]):
        # Each filter's own numbers, as its own finding gives them.
        assert line.startswith(f"• Filter {f}: largest pre-activation ")
        assert format_range(weights[f].min(), weights[f].max()) in line
        assert line.removeprefix(f"• Filter {f}: ") == dead[f].detail
        start, end = dead[f].detail.split("; weights ")[1].split(" → ")
        assert f"which moved the filter weights from {start} to {end}." in dead[f].explanation
    # The next iteration carries each filter's story forward; its largest pre-activation is
    # the new one.
    second = session.step()
    (later,) = [f for f in merge_alike(second.findings) if f.code == "dead_filter"]
    assert later.title == card.title
    for f, (old, new) in enumerate(zip(lines[1:], later.explanation.splitlines()[1:], strict=True)):
        peak = format_number(second.pre_activation[:, f].max())
        assert (
            new.split("; ")
            == [f"• Filter {f}: largest pre-activation {peak}"] + old.split("; ")[1:]
        )


def _rates(findings):
    return {
        f.code: [fix.changes["learning_rate"] for fix in f.fixes if "learning_rate" in fix.changes]
        for f in findings
    }


def test_before_the_first_step_the_cards_follow_a_new_rate_and_offer_only_real_changes(question):
    """A teacher's walkthrough: the answer's fix with 16 filters (some start mostly dead),
    the rate raised to 0.5 before the first Step. The mostly-dead card still said ÷10 of the
    old rate (→ 0.001) beside the prediction's ÷1000 of the new, and the prediction offered
    "Scale pixels to 0..1" and N(0, 0.02) to a run that had both: clicking them changed
    nothing. (Since a newcomer pass, the mostly-dead card offers no rate before the first
    update at all: nothing was updated yet, and the prediction has its own card.)"""
    session = TrainingSession(question, preset_config("recommended", num_filters=16))
    at_reset = _rates(session.latest.findings)
    assert at_reset["mostly_dead"] == []
    session.update_settings(learning_rate=0.5)
    findings = session.latest.findings
    rates = _rates(findings)
    assert {"first_update_kills", "mostly_dead"} <= set(rates)
    assert rates["mostly_dead"] == []
    # One rate on every card, from the new one.
    assert len({rate for fixes in rates.values() for rate in fixes}) == 1
    assert rates["first_update_kills"][0] < 0.05
    (kills,) = [f for f in useful_fixes(findings, session.config) if f.code == "first_update_kills"]
    assert kills.title.startswith("Pressing Step now will kill filters ")  # (which of the 16)
    assert [fix.label.split(" (")[0] for fix in kills.fixes] == ["Divide the learning rate by 1000"]
    # And again, from the rate set last (not the one at reset).
    session.update_settings(learning_rate=0.05)
    rates = _rates(session.latest.findings)
    assert len({rate for fixes in rates.values() for rate in fixes}) == 1
    assert rates["first_update_kills"][0] < 0.05
    # Back to the preset's rate: as at reset.
    session.update_settings(learning_rate=0.01)
    assert _rates(session.latest.findings) == at_reset


def test_a_fix_is_offered_only_when_it_changes_a_setting(question):
    session = TrainingSession(question, preset_config("seed", pixel_scaling="unit"))
    for record in (session.latest, session.step()):
        shown = useful_fixes(record.findings, session.config)
        for finding in shown:
            labels = [fix.label for fix in finding.fixes]
            assert "Scale pixels to 0..1 and start again" not in labels, finding.code
    # Iteration 0's record keeps what its prediction was made with (a record recomputed
    # after a live change must come out the same); the display leaves it out.
    kept = [fix.label for finding in session.record(0).findings for fix in finding.fixes]
    assert "Scale pixels to 0..1 and start again" in kept


@pytest.mark.parametrize(
    ("changes", "same_run"),
    [
        # pixels and rate fixed already: the whole fix only sets the weights
        ({"pixel_scaling": "unit"}, "Initialise both layers with N(0, 0.02) and start again"),
        # weights fixed already: the whole fix only scales the pixels
        (
            {"conv_init": InitSpec("normal", {"mean": 0.0, "std": 0.02})},
            "Scale pixels to 0..1 and start again",
        ),
    ],
)
def test_a_fix_that_makes_the_same_run_as_one_before_it_is_not_offered(question, changes, same_run):
    """A review: the answer's whole fix and one cause's fix gave the same run, two buttons
    with one note. The first on the card stays."""
    normal = InitSpec("normal", {"mean": 0.0, "std": 0.02})
    config = preset_config("seed", learning_rate=0.01, classifier_init=normal, **changes)
    session = TrainingSession(question, config)
    records = [session.latest, *(session.step() for _ in range(3))]
    cards = [f for r in records for f in useful_fixes(r.findings, config) if f.fixes]
    whole = [f for f in cards if f.fixes[0].label.startswith("Apply the answer's whole fix")]
    assert whole  # (the setup still shows one of the question's causes)
    for card in whole:
        assert same_run not in [fix.label for fix in card.fixes], card.code
    # Every card's buttons make different runs.
    for card in cards:
        runs = {(repr(config.with_changes(**fix.changes)), fix.rewind_to) for fix in card.fixes}
        assert len(runs) == len(card.fixes), card.code
    # The records keep both (the display drops one).
    kept = {fix.label for r in records for f in r.findings for fix in f.fixes}
    assert same_run in kept


def test_fixes_that_start_again_and_that_go_on_are_different_runs():
    """The same new rate, once starting again (the fix also names a setting that needs a
    reset, set already) and once from the next update on: two runs, both shown; the same
    rate again from the next update on is the second's run (a review)."""
    config = preset_config("recommended")
    again = Fix("again", {"learning_rate": 0.001, "pixel_scaling": config.pixel_scaling})
    going_on = Fix("going on", {"learning_rate": 0.001})
    finding = Finding("large_update", "warning", "t", "e", fixes=(again, going_on, going_on))
    (shown,) = useful_fixes([finding], config)
    assert again.needs_reset and not going_on.needs_reset
    assert shown.fixes == (again, going_on)


def test_a_divide_fix_made_at_a_larger_rate_is_not_offered_once_the_rate_is_lower(question):
    """A newcomer pass: after one fix set 0.0001, a card made at the old rate offered "Divide
    the learning rate by 1000 (→ 0.001)", which raised it tenfold."""
    session = TrainingSession(question, preset_config("seed"))
    killed = session.step()
    divides = [fix for f in killed.findings for fix in f.fixes if fix.lowers_rate]
    rate = divides[0].changes["learning_rate"]
    assert all(fix.changes["learning_rate"] == rate for fix in divides)  # (one rate a card set)
    # At the fix's own rate, those that go back to before the update that killed the filter
    # stay (a review: the rate typed in by hand left no card able to go back).
    session.update_settings(learning_rate=rate)
    shown = useful_fixes(killed.findings, session.config)
    back = [fix for f in shown for fix in f.fixes if fix.lowers_rate]
    assert back and all(fix.rewind_to is not None for fix in back)
    assert len(back) == sum(fix.rewind_to is not None for fix in divides)
    # Below it, the fix would raise the rate: not offered.
    session.update_settings(learning_rate=rate / 10)
    shown = useful_fixes(killed.findings, session.config)
    assert not any(fix.lowers_rate for f in shown for fix in f.fixes)
    # Those that still lower it stay.
    session.update_settings(learning_rate=0.5)
    shown = useful_fixes(killed.findings, session.config)
    assert sum(fix.lowers_rate for f in shown for fix in f.fixes) == len(divides)


def test_a_confidently_wrong_image_is_numbered_as_the_window_numbers_it(question):
    session = TrainingSession(question, preset_config("seed"))
    wrong = next(f for f in session.latest.findings if f.code == "saturated_wrong")
    # Image 1, the cross (label 0), is predicted as a circle with a logit in the millions.
    assert wrong.explanation.startswith("Image 1 (label 0) has logit")
    assert wrong.subject == "image 1"


def _first_update_findings(findings):
    return [f for f in findings if f.code.startswith("first_update")]


def test_a_new_learning_rate_before_the_first_step_predicts_it_again(question):
    """'Pressing Step now will kill the filter' is a prediction made with the learning rate:
    changed before the first Step, the prediction is made again with the new one."""
    from model.formatting import format_number

    session = TrainingSession(question, preset_config("seed"))
    at_reset = _first_update_findings(session.latest.findings)
    assert [f.code for f in at_reset] == ["first_update_kills"]
    codes_before = [f.code for f in session.latest.findings]

    session.update_settings(learning_rate=5e-8)
    initial = session.latest
    assert initial.iteration == 0
    remade = _first_update_findings(initial.findings)
    assert all(f.code != "first_update_kills" for f in remade)
    assert all(format_number(5e-8) in f.explanation for f in remade)
    # The other findings stay, in their places.
    others = [c for c in codes_before if not c.startswith("first_update")]
    assert [f.code for f in initial.findings if not f.code.startswith("first_update")] == others
    # The run's finding log (reports) no longer holds the old prediction.
    assert all(f.code != "first_update_kills" for f in session.history.findings)
    assert session.record(0) is initial

    # The Step then is the one predicted, and the one a run started at 5e-8 takes.
    twin = TrainingSession(question, preset_config("seed").with_changes(learning_rate=5e-8))
    first, want = session.step(), twin.step()
    np.testing.assert_array_equal(first.params["conv.weight"], want.params["conv.weight"])
    assert first.metrics == want.metrics
    assert first.dead_fraction < 1.0

    # Back at iteration 0 with the question's learning rate: the same warning as at the start.
    session.update_settings(learning_rate=0.5)
    # (after the first update nothing is predicted again: iteration 0 keeps what it said)
    assert _first_update_findings(session.record(0).findings) == remade
    session.rewind(0)
    assert _first_update_findings(session.latest.findings) == at_reset
    assert [f.code for f in session.history.findings if f.iteration == 0].count(
        "first_update_kills"
    ) == 1


def test_the_first_fix_of_the_questions_failure_is_the_whole_answer_and_it_learns(question):
    """A learner takes the first button for the fix: N(0, 0.02) alone on raw pixels saturates
    the sigmoid, a learning rate small enough for raw pixels learns nothing. The first is the
    answer's whole recipe, before and after the filter died."""
    session = TrainingSession(question, preset_config("seed"))
    kills = next(f for f in session.latest.findings if f.code == "first_update_kills")
    dead = next(f for f in session.step().findings if f.code == "dead_filter")
    for finding in (kills, dead):
        whole = finding.fixes[0]
        assert whole.label == (
            "Apply the answer's whole fix: N(0, 0.02) weights, pixels 0..1, learning rate "
            "0.01, and start again"
        )
        assert whole.needs_reset and whole.rewind_to is None
        # Then the same recipe with zero-centred inputs.
        assert finding.fixes[1] == fix_answer_standardized()
    fixed = preset_config("seed").with_changes(**dead.fixes[0].changes)
    assert fixed == preset_config("recommended")
    standardised = preset_config("seed").with_changes(**dead.fixes[1].changes)
    assert standardised == preset_config("recommended", pixel_scaling="standardize")
    for config in (fixed, standardised):
        session = TrainingSession(question, config)
        records = [session.step() for _ in range(50)]
        assert records[-1].accuracy == 1.0 and not any(r.dead_filters for r in records)
    # Without the question's causes of scale neither is offered.
    session = TrainingSession(question, preset_config("recommended", learning_rate=1e4))
    for record in (session.latest, session.step()):
        assert all("the answer's" not in fix.label for f in record.findings for fix in f.fixes)


def test_with_standardised_pixels_the_answers_variant_for_them_is_not_offered(question):
    """All-positive weights on standardised pixels (the filter dies at iteration 3): the
    variant would change only the weights, the same run as N(0, 0.02) alone, under a label
    about the pixels (a review)."""
    config = preset_config("seed", pixel_scaling="standardize", learning_rate=0.01)
    session = TrainingSession(question, config)
    records = [session.latest, *(session.step() for _ in range(5))]
    offered = [fix for r in records for f in r.findings for fix in f.fixes]
    assert any(fix.label.startswith("Apply the answer's whole fix") for fix in offered)
    assert fix_answer_standardized() not in offered


def _small(size: int) -> Dataset:
    rng = np.random.default_rng(size)
    images = rng.integers(0, 256, size=(4, 3, size, size), dtype=np.uint8)
    return Dataset(images, np.array([0, 1, 0, 1]), ("a", "b"), tuple(f"{i}.png" for i in range(4)))


@pytest.mark.parametrize("change", ["kernel", "data", "memory"])
def test_a_reset_that_fails_changes_nothing(change, monkeypatch):
    """A reviewer's case: a kernel too large for the images (or new images too small for the
    kernel, or no memory for the maps) failed the reset but left the session half-switched,
    its new settings or images with the old parameters, and every Step failed after it."""
    session = TrainingSession(_small(4), preset_config("recommended", padding="valid"))
    session.step()
    before = (session.config, session.dataset, session.latest, session.history)
    if change == "kernel":
        attempt = {"config": session.config.with_changes(kernel_size=5)}
    elif change == "data":
        attempt = {"dataset": _small(2)}
    else:
        attempt = {"config": session.config.with_changes(num_filters=16)}

        def no_memory(*_args, **_kwargs):
            raise MemoryError("Unable to allocate 800. MiB")

        monkeypatch.setattr(session, "_evaluate", no_memory)
    with pytest.raises((ValueError, MemoryError)):
        session.reset(**attempt)
    monkeypatch.undo()
    after = (session.config, session.dataset, session.latest, session.history)
    assert all(now is then for now, then in zip(after, before, strict=True))
    record = session.step()  # the run goes on as it was
    assert record.iteration == 2 and record.pre_activation.shape == (4, 1, 2, 2)
    assert session.record(1) is not None


def test_maps_larger_than_the_history_budget_are_said_before_training(monkeypatch):
    """A robustness pass: 400 images of 128×128 with 8 filters in float64 held 2.3-2.7 GB in
    the training process against a 256 MiB budget, and nothing said so before training."""
    from model import diagnostics

    monkeypatch.setattr(diagnostics, "LARGE_MAPS_BYTES", 2**20)  # (not 64 MiB, to be quick)
    config = preset_config("recommended", num_filters=8, history_budget_mb=1)
    session = TrainingSession(_small(64), config)  # 4 × 8 × 64×64 × 2 maps × 8 bytes = 2 MiB
    (large,) = [f for f in session.latest.findings if f.code == "large_maps"]
    assert large.title == "One iteration's maps take 2 MiB, more than the history's budget"
    assert large.explanation.startswith("4 images × 8 filters × 64×64 outputs")
    assert [fix.changes for fix in large.fixes] == [{"dtype": "float32"}]
    float32 = TrainingSession(_small(64), config.with_changes(dtype="float32", num_filters=4))
    assert "large_maps" not in {f.code for f in float32.latest.findings}  # 0.5 MiB
    assert "large_maps" not in {f.code for f in session.step().findings}  # (said before training)


def test_recommended_preset_learns_without_dead_filter(question):
    session = TrainingSession(question, preset_config("recommended"))
    initial_loss = session.latest.loss
    records = [session.step() for _ in range(50)]
    assert records[-1].accuracy == 1.0
    assert records[-1].loss < initial_loss
    assert all(not r.dead_filters for r in records)


def test_run_pauses_when_a_filter_dies(question):
    session = TrainingSession(question, preset_config("seed"))
    result = session.run(100)
    assert result.steps == 1
    assert result.paused_by is not None and result.paused_by.code == "dead_filter"
    assert session.iteration == 1
    assert session.run(5).steps == 5  # already dead: nothing new pauses it


def test_loss_falls_on_shapes_full_batch(shapes):
    config = preset_config("recommended", update_mode="full_batch", learning_rate=0.05)
    session = TrainingSession(shapes, config)
    first = session.latest.loss
    session.run(60, pause_on_findings=False)
    assert session.latest.loss < first


# -- determinism -------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_same_seed_gives_bit_identical_history(shapes, dtype):
    config = preset_config("recommended", shuffle=True, seed=11, dtype=dtype, momentum=0.5)
    a = TrainingSession(shapes, config)
    b = TrainingSession(shapes, config)
    for _ in range(30):
        assert_same_record(a.step(), b.step())
    assert a.latest.params["conv.weight"].dtype == np.dtype(dtype)


def test_reset_restores_the_initial_weights_and_reseed_changes_them(question):
    session = TrainingSession(question, preset_config("recommended"))
    initial = session.latest.params["conv.weight"]
    session.run(5)
    session.reset()
    np.testing.assert_array_equal(session.latest.params["conv.weight"], initial)
    assert session.iteration == 0 and len(session.history) == 1
    seed = session.reseed(12345)
    assert seed == 12345 and session.config.seed == 12345
    assert not np.array_equal(session.latest.params["conv.weight"], initial)


def test_per_image_order_and_shuffle():
    config = TrainingConfig(shuffle=False)
    assert [int(batch_indices(config, t, 3)[0]) for t in range(1, 8)] == [0, 1, 2, 0, 1, 2, 0]
    shuffled = TrainingConfig(shuffle=True, seed=3)
    epoch = sorted(int(batch_indices(shuffled, t, 10)[0]) for t in range(1, 11))
    assert epoch == list(range(10))
    first = [int(batch_indices(shuffled, t, 10)[0]) for t in range(1, 11)]
    second = [int(batch_indices(shuffled, t, 10)[0]) for t in range(11, 21)]
    assert first != second  # a new permutation each epoch
    assert first == [int(batch_indices(shuffled, t, 10)[0]) for t in range(1, 11)]
    full = TrainingConfig(update_mode="full_batch")
    np.testing.assert_array_equal(batch_indices(full, 5, 4), [0, 1, 2, 3])


def test_step_epoch_counts(shapes):
    session = TrainingSession(shapes, preset_config("recommended"))
    assert session.steps_to_epoch_end() == len(shapes)
    session.run(3)
    assert session.steps_to_epoch_end() == len(shapes) - 3
    full = TrainingSession(shapes, preset_config("recommended", update_mode="full_batch"))
    assert full.steps_to_epoch_end() == 1


# -- live settings, branching, preview ---------------------------------------------------------


def test_learning_rate_changes_between_iterations_without_reset(question):
    session = TrainingSession(question, preset_config("recommended"))
    session.step()
    session.update_settings(learning_rate=0.001)
    record = session.step()
    assert record.settings.learning_rate == 0.001
    assert session.iteration == 2
    with pytest.raises(ValueError, match="only change on reset"):
        session.update_settings(num_filters=2)


def test_rewind_branches_and_replays_exactly(question):
    session = TrainingSession(question, preset_config("seed"))
    session.run(4, pause_on_findings=False)
    session.rewind(0)
    assert session.iteration == 0 and len(session.history) == 1
    session.update_settings(learning_rate=1e-7)
    record = session.step()
    assert record.settings.learning_rate == 1e-7
    assert record.dead_fraction < 1.0  # a small enough step does not kill the filter


def test_preview_does_not_change_the_session(question):
    session = TrainingSession(question, preset_config("seed"))
    preview = session.preview(learning_rate=1e-6)
    assert preview.iteration == 1 and preview.settings.learning_rate == 1e-6
    assert session.iteration == 0 and len(session.history) == 1
    expected = session.preview()
    real = session.step()
    assert real.settings.learning_rate == 0.5
    assert_same_record(expected, real)


@pytest.mark.parametrize(
    "changes",
    [{"shuffle": True, "momentum": 0.9}, {"update_mode": "full_batch", "momentum": 0.9}],
    ids=["per image", "full batch"],
)
def test_a_step_computed_ahead_is_the_step_it_would_have_been(shapes, changes, forward_calls):
    config = preset_config("recommended", **changes)
    forwards = forward_calls

    def drive(session, ahead):
        records = []
        for k in range(12):
            if ahead:
                before = (session.iteration, len(session.history), session.latest)
                forwards.clear()
                session.compute_ahead()
                computed = len(forwards)
                session.compute_ahead()  # still valid: nothing more is computed
                assert len(forwards) == computed > 0
                assert (session.iteration, len(session.history), session.latest) == before
            if k == 4:
                session.update_settings(learning_rate=0.002)
            if k == 8:
                session.rewind(5)
            forwards.clear()
            records.append(session.step())
            if ahead:
                # Taken as it was computed; after a change of settings or a rewind, made anew.
                assert (len(forwards) > 0) == (k in (4, 8))
        return records, session

    ahead, ahead_session = drive(TrainingSession(shapes, config), ahead=True)
    plain, plain_session = drive(TrainingSession(shapes, config), ahead=False)
    for a, b in zip(ahead, plain, strict=True):
        assert_same_record(a, b)
        assert a.batch_loss == b.batch_loss and a.settings == b.settings
    assert ahead[5].settings.learning_rate == 0.002
    assert ahead[8].iteration == 6  # after the rewind to 5
    np.testing.assert_array_equal(
        ahead_session.history.metrics.rows_after(-1)[0],
        plain_session.history.metrics.rows_after(-1)[0],
    )
    # A reset forgets it: the new run's first step is that run's own.
    ahead_session.compute_ahead()
    ahead_session.reset(config.with_changes(seed=config.seed + 1))
    fresh = TrainingSession(shapes, config.with_changes(seed=config.seed + 1))
    assert_same_record(ahead_session.step(), fresh.step())


def test_what_the_window_reads_meanwhile_leaves_the_step_computed_ahead_as_it_was(
    shapes, forward_calls, monkeypatch
):
    from model import network
    from model.whatif import what_if

    # A small budget, so that reading an early iteration replays it from a checkpoint.
    config = preset_config("recommended", update_mode="full_batch", history_budget_mb=4)
    session, twin = TrainingSession(shapes, config), TrainingSession(shapes, config)
    thinned = []
    while not thinned and session.iteration < 100:
        session.step()
        twin.step()
        thinned = [k for k in range(1, session.iteration) if session.history.stored(k) is None]
    assert thinned
    session.compute_ahead()
    # All that the window asks for between two Steps: previews, the what-if table, records.
    session.preview(0.01)
    what_if(session, (0.1, 10.0))
    session.record(thinned[0])
    session.record(session.iteration)
    forward_calls.clear()
    record = session.step()
    assert not forward_calls  # the step computed ahead, taken as it was
    assert_same_record(record, twin.step())
    # A failure while computing ahead leaves nothing behind: the step is computed when asked.
    monkeypatch.setattr(network, "forward", lambda *a, **k: (_ for _ in ()).throw(MemoryError()))
    with pytest.raises(MemoryError):
        session.compute_ahead()
    monkeypatch.undo()
    assert_same_record(session.step(), twin.step())


# -- history within a budget -------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes",
    [{"shuffle": True, "momentum": 0.9}, {"update_mode": "full_batch"}],
    ids=["per image", "full batch"],
)
def test_thinned_history_rebuilds_every_iteration_exactly(shapes, changes):
    # One whole record of the 80 shapes holds 1.3 MB of maps; 4 MB forces every kind of thinning.
    # Full batch: each update reuses the forward pass that measured the record before it, in the
    # run and in a rebuild alike.
    config = preset_config("recommended", history_budget_mb=4, **changes)
    thin = TrainingSession(shapes, config)
    full = TrainingSession(shapes, config.with_changes(history_budget_mb=4096))
    for _ in range(400):
        thin.step()
        full.step()
    assert thin.history.nbytes <= 4 * 2**20
    stored = [thin.history.stored(k) for k in range(401)]
    assert any(r is None for r in stored)  # whole records dropped
    assert any(r is not None and not r.is_complete for r in stored)  # records stripped
    for k in (0, 1, 7, 33, 64, 99, 200, 399, 400):
        assert_same_record(thin.record(k), full.record(k))
    # Rewinding into a dropped stretch and continuing matches the unthinned run too.
    thin.rewind(50)
    full.rewind(50)
    for _ in range(5):
        assert_same_record(thin.step(), full.step())


@pytest.mark.parametrize("mode", ["per_image", "full_batch"])
def test_recomputing_a_dropped_iteration_stops_when_asked(shapes, mode):
    config = preset_config("recommended", update_mode=mode)
    session = TrainingSession(shapes, config)
    records = [session.step() for _ in range(20)]
    for k in range(5, 20):
        session.history._records.pop(k)  # as thinning drops them
    asked, replayed = [], []
    advance = session._advance
    session._advance = lambda *a, **k: replayed.append(1) or advance(*a, **k)

    def stop_at_third():
        asked.append(1)
        return len(asked) == 3

    with pytest.raises(Interrupted):
        session.record(15, should_stop=stop_at_third)
    assert (len(asked), len(replayed)) == (3, 2)  # asked before each replayed update
    del session._advance
    # Nothing changed: the same record recomputes exactly, and training continues as before.
    assert_same_record(session.record(15, should_stop=lambda: False), records[14])
    twin = TrainingSession(shapes, config)
    for _ in range(20):
        twin.step()
    assert_same_record(session.step(), twin.step())


def test_the_last_recomputed_iteration_is_not_replayed_again(shapes):
    config = preset_config("recommended")
    session = TrainingSession(shapes, config)
    records = [session.step() for _ in range(20)]
    for k in range(5, 20):
        session.history._records.pop(k)  # as thinning drops them
    replayed = []
    advance = session._advance
    session._advance = lambda *a, **k: replayed.append(1) or advance(*a, **k)
    first = session.record(15)
    again = session.record(15)
    assert len(replayed) == 11  # from iteration 4, once
    assert_same_record(again, first)
    assert_same_record(again, records[14])
    session.rewind(15)  # continuing from it replays nothing either
    assert len(replayed) == 11
    # Going back before it (to a kept iteration: nothing else is recomputed meanwhile):
    # iteration 15 of the new branch is not the one kept.
    session.rewind(4)
    del session._advance
    session.update_settings(learning_rate=0.5)
    for _ in range(12):
        session.step()
    session.history._records.pop(15)
    twin = TrainingSession(shapes, config)
    for _ in range(4):
        twin.step()
    twin.update_settings(learning_rate=0.5)
    for _ in range(12):
        twin.step()
    assert_same_record(session.record(15), twin.record(15))


@pytest.mark.parametrize("going_back", ["rewind to the iteration before", "reset"])
def test_a_kept_recomputed_iteration_never_outlives_its_run(shapes, going_back):
    config = preset_config("recommended")
    session = TrainingSession(shapes, config)
    for _ in range(20):
        session.step()
    session.history._records.pop(15)
    session.record(15)  # replayed from 14, kept
    twin = TrainingSession(shapes, config)
    if going_back == "reset":
        config = config.with_changes(seed=config.seed + 1)
        session.reset(config)
        twin = TrainingSession(shapes, config)
    else:
        session.rewind(14)  # stored: nothing recomputed, nothing else kept instead
        for _ in range(14):
            twin.step()
        session.update_settings(learning_rate=0.5)
        twin.update_settings(learning_rate=0.5)
    while session.iteration < 17:
        session.step()
    while twin.iteration < 17:
        twin.step()
    session.history._records.pop(15)
    assert_same_record(session.record(15), twin.record(15))


def test_full_batch_measures_once_per_update_with_the_same_numbers(
    shapes, monkeypatch, forward_calls
):
    from model import session as session_module

    config = preset_config("recommended", update_mode="full_batch", momentum=0.9)
    forwards = forward_calls

    def run(reuse_limit):
        monkeypatch.setattr(session_module, "REUSE_FORWARD_MAX_BYTES", reuse_limit)
        session = TrainingSession(shapes, config)
        forwards.clear()
        records = [session.step() for _ in range(30)]
        return records, len(forwards), session

    kept, kept_forwards, session = run(2**30)
    twice, twice_forwards, _ = run(-1)
    # The forward pass that measured each record serves the next update: one pass an update
    # instead of two, and not one number differs.
    assert (kept_forwards, twice_forwards) == (30, 60)
    for a, b in zip(kept, twice, strict=True):
        assert_same_record(a, b)
        assert a.batch_loss == b.batch_loss
    # A preview in between (the what-if panel) neither breaks nor spends the kept pass.
    monkeypatch.setattr(session_module, "REUSE_FORWARD_MAX_BYTES", 2**30)
    preview = session.preview(0.01)
    forwards.clear()
    session.step()
    assert len(forwards) == 1
    assert preview.iteration == session.iteration
    # Rebuilding a dropped stretch replays it the same way: one pass per update, plus the
    # first; and the newest record's kept pass still serves the next step.
    for k in range(11, 21):
        session.history._records.pop(k)  # as thinning drops them
    assert session.history.latest_restorable(20).iteration == 10
    forwards.clear()
    assert_same_record(session.record(20), kept[19])
    assert len(forwards) == 11  # ten updates from iteration 10, twice that without the reuse
    forwards.clear()
    session.step()
    assert len(forwards) == 1


def test_metrics_table_tracks_every_iteration(question):
    session = TrainingSession(question, preset_config("recommended"))
    session.run(10)
    table = session.history.metrics
    np.testing.assert_array_equal(table.iterations, np.arange(11))
    assert table.image_losses.shape == (11, 2)
    assert table.column("loss")[-1] == session.latest.loss
    session.rewind(4)
    assert len(table) == 5


# -- divergence ----------------------------------------------------------------------------------


def test_non_finite_weights_pause_the_run(question):
    # Leaky ReLU keeps gradients flowing so the weights keep growing until float32 overflows.
    config = TrainingConfig(
        dtype="float32",
        pixel_scaling="raw",
        activation="leaky_relu",
        conv_init=InitSpec("uniform", {"low": 0, "high": 1}),
        classifier_init=InitSpec("uniform", {"low": 0, "high": 1}),
        learning_rate=1e12,
    )
    session = TrainingSession(question, config)
    result = session.run(50)
    assert result.paused_by is not None and result.paused_by.code == "non_finite"
    stopped_at = session.iteration
    assert all(np.isfinite(session.record(k).loss) for k in range(stopped_at))
    fix = result.paused_by.fixes[0]
    before = session.record(stopped_at - 1).metrics["conv_update_ratio"]
    # Going back one iteration helps only if the run was not exploding already.
    assert fix.rewind_to == (0 if before >= 1 else stopped_at - 1)


def test_a_run_that_exploded_before_its_nan_is_sent_back_to_the_start(shapes):
    """A UX pass: Shapes at 1e6 with leaky ReLU overflows at iteration 23; the card sent it
    back to 22, whose weights reach 1e149, with ÷100, and one step later it was NaN again
    with the same card."""
    session = TrainingSession(
        shapes, preset_config("shapes", learning_rate=1e6, activation="leaky_relu")
    )
    result = session.run(60)
    assert result.paused_by is not None and result.paused_by.code == "non_finite"
    (rate, clip) = result.paused_by.fixes
    assert rate.rewind_to == clip.rewind_to == 0
    assert rate.changes["learning_rate"] <= 1e-2  # not ÷100 of 1e6
    assert "Start again from iteration 0" in result.paused_by.explanation
    # The weights were finite and only the logits overflowed (the card said the update had
    # overflowed, "in S, t, a, r, t, ...": the advice's text spelt out letter by letter).
    assert result.paused_by.explanation.startswith(
        "At iteration 23 the weights are finite numbers (the largest 6.759e+156), but the "
        "logits they give overflow the float64 range"
    )
    assert "S, t, a, r, t" not in result.paused_by.explanation
    # From there, the fix's rate goes on without overflowing.
    session.rewind(0)
    session.update_settings(**rate.changes)
    session.run(30, pause_on_findings=False)
    assert np.isfinite(session.latest.loss)


def test_a_nan_after_a_live_rate_raise_goes_back_to_the_last_calm_iteration(shapes):
    """A review: 200 good iterations, then the rate raised live to 1e6: the fix went back to
    iteration 0, saying any rate would overflow, though iteration 200 was fine."""
    session = TrainingSession(
        shapes, preset_config("shapes", learning_rate=0.01, activation="leaky_relu")
    )
    session.run(200, pause_on_findings=False)
    session.update_settings(learning_rate=1e6)
    result = session.run(60)
    assert result.paused_by is not None and result.paused_by.code == "non_finite"
    (rate, clip) = result.paused_by.fixes
    assert rate.rewind_to == clip.rewind_to == 200
    assert "Go back to iteration 200, the last whose update" in result.paused_by.explanation
    assert ", t, " not in result.paused_by.explanation  # (no text spelt out letter by letter)


def test_thinning_the_metrics_keeps_the_runs_peaks(question):
    session = TrainingSession(question, preset_config("seed"))
    session.run(40, pause_on_findings=False)
    table = session.history.metrics
    peak = float(np.nanmax(table.column("conv_grad_absmax")))
    assert peak == session.record(1).metrics["conv_grad_absmax"]  # the killing update
    while 1 in table.iterations:
        table.thin()
    assert float(np.nanmax(table.column("conv_grad_absmax"))) == peak
    assert table.iterations[0] == 0 and len(table) < 41


@pytest.mark.parametrize(
    ("changes", "code", "iteration"),
    [
        ({}, "dead_filter", 1),
        ({"activation": "leaky_relu", "dtype": "float32"}, "non_finite", 3),
    ],
)
def test_a_learning_rate_of_a_million_pauses_at_the_iteration_it_breaks(
    question, changes, code, iteration
):
    session = TrainingSession(question, preset_config("seed", learning_rate=1e6, **changes))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no floating-point warning reaches the console
        result = session.run(100)
    assert result.paused_by is not None and result.paused_by.code == code
    assert session.iteration == iteration
    assert result.paused_by.explanation  # the cause, in words
    assert all(np.isfinite(session.record(k).loss) for k in range(iteration))


@pytest.mark.parametrize("mode", ["per_image", "full_batch"])
def test_a_records_maps_are_read_only_and_never_overwritten_by_later_steps(shapes, mode):
    session = TrainingSession(shapes, preset_config("recommended", update_mode=mode))
    session.step()
    record = session.step()
    maps = {name: np.array(getattr(record, name)) for name in ("pre_activation", "activation")}
    later = [session.step() for _ in range(5)]
    session.preview(0.5)
    session.record(1)
    for name, values in maps.items():
        array = getattr(record, name)
        np.testing.assert_array_equal(array, values)
        assert not array.flags.writeable
        with pytest.raises(ValueError, match="read-only"):
            array[...] = 0
        assert not any(np.shares_memory(array, getattr(r, name)) for r in later)


def test_a_records_map_metrics_equal_its_maps(shapes):
    # The question's preset: its first update kills the filter (every map <= 0).
    config = preset_config("seed", update_mode="full_batch")
    session = TrainingSession(shapes, config)
    for record in [session.record(0)] + [session.step() for _ in range(3)]:
        pre, act = record.pre_activation, record.activation
        assert record.metrics["pre_activation_absmax"] == float(np.max(np.abs(pre)))
        assert record.metrics["activation_max"] == float(act.max())
        np.testing.assert_array_equal(
            record.dead_fraction_per_filter, (pre <= 0).sum(axis=(0, 2, 3)) / pre[:, 0].size
        )
    assert record.dead_fraction_per_filter.tolist() == [1.0] * config.num_filters


def test_an_all_zero_start_shows_zero_maxima_not_negative_zero(question):
    # Zero filters and bias: every map is exactly 0. The largest |pre-activation| and the
    # largest output are +0.0 (metrics.csv writes the sign of a zero).
    config = TrainingConfig(conv_init=InitSpec("constant"), pixel_scaling="unit")
    for activation in ("relu", "leaky_relu", "identity"):
        record = TrainingSession(question, config.with_changes(activation=activation)).latest
        assert not record.pre_activation.any()
        for name in ("pre_activation_absmax", "activation_max"):
            value = record.metrics[name]
            assert value == 0.0 and np.copysign(1.0, value) == 1.0, (activation, name)


def test_the_shapes_preset_learns_the_shapes_example(shapes):
    """What its description promises: over 95% right within about 500 iterations, at most one
    of its eight filters dead (the answer's fix, one filter and one image per update, stays
    near chance there)."""
    from model.presets import PRESETS

    assert PRESETS["shapes"].example == "shapes"
    session = TrainingSession(shapes, preset_config("shapes"))
    result = session.run(
        520, should_stop=lambda: session.latest.accuracy >= 0.95, pause_on_findings=False
    )
    record = session.latest
    assert record.accuracy >= 0.95, (result, record.iteration)
    assert len(record.dead_filters) <= 1


def test_data_of_one_label_is_said_to_be_so(question):
    """Relabelled down to one class (a folder like that is refused on loading), the data has
    nothing to tell apart: a warning says so at every iteration, not a silent 100%."""
    one_label = question.with_label(0, 1)
    session = TrainingSession(one_label, preset_config("recommended"))
    for record in (session.latest, session.step()):
        (finding,) = [f for f in record.findings if f.code == "one_label"]
        assert finding.severity == "warning"
        assert finding.title == "Every image has label 1"
    assert not any(f.code == "one_label" for f in TrainingSession(question).latest.findings)


def _sorted_images(labels) -> Dataset:
    labels = np.array(labels)
    images = np.random.default_rng(0).integers(0, 256, (len(labels), 3, 8, 8), dtype=np.uint8)
    return Dataset(images, labels, ("cross", "circle"), tuple(f"{i}.png" for i in labels))


def test_images_in_runs_of_one_label_are_pointed_out_before_training():
    """A learner's folder gave six updates on crosses, then six on circles, every epoch; each
    fix alone died at the first circle. A note says so and offers shuffling."""
    session = TrainingSession(_sorted_images([0] * 6 + [1] * 6), preset_config("recommended"))
    (finding,) = [f for f in session.latest.findings if f.code == "label_runs"]
    assert finding.severity == "info"
    assert finding.title == "Images come 6 of one label in a row, and are not shuffled"
    assert "updates 1 to 6 of every epoch are all on label 0 images" in finding.explanation
    # The longest run is named, wherever it is (a review: "the first 1 updates").
    later = TrainingSession(_sorted_images([0, 1, 0, 0, 0, 0, 1, 1]), preset_config("recommended"))
    (finding,) = [f for f in later.latest.findings if f.code == "label_runs"]
    assert "updates 3 to 6 of every epoch are all on label 0 images" in finding.explanation
    (fix,) = finding.fixes
    assert fix.changes == {"shuffle": True} and fix.needs_reset


@pytest.mark.parametrize(
    ("labels", "changes"),
    [
        ([0, 1] * 6, {}),  # alternating: no run
        ([0, 0, 1, 1] * 3, {}),  # runs of two
        ([0] * 6 + [1] * 6, {"shuffle": True}),
        ([0] * 6 + [1] * 6, {"update_mode": "full_batch"}),  # every update sees all
    ],
)
def test_no_note_of_label_runs_where_updates_do_not_follow_them(labels, changes):
    config = preset_config("recommended", **changes)
    findings = TrainingSession(_sorted_images(labels), config).latest.findings
    assert not any(f.code == "label_runs" for f in findings)


def test_after_a_rewind_the_settings_log_has_the_rate_the_next_updates_use(question):
    """A reviewer's case: a rate changed at iteration 5, then back to 2; iteration 3 is made
    with the new rate, and the log (which a thinned record is recomputed from) must say so."""
    session = TrainingSession(question, preset_config("recommended"))
    session.run(5, pause_on_findings=False)
    session.update_settings(learning_rate=0.001)
    session.rewind(2)
    third = session.step()
    assert third.settings.learning_rate == 0.001
    assert session.history.settings_at(3).learning_rate == 0.001
    assert session.history.settings_at(2).learning_rate == 0.01


def test_the_predicted_first_step_is_the_one_taken_and_reuses_its_pass(shapes, monkeypatch):
    """The step predicted at iteration 0 is kept and taken as it is; in full-batch mode the
    pass that measured it is the next update's forward pass, as for any step computed ahead."""
    from model import network

    session = TrainingSession(shapes, preset_config("shapes"))
    session.update_settings(learning_rate=0.01)
    calls = []
    original = network.forward
    monkeypatch.setattr(network, "forward", lambda *a, **k: calls.append(1) or original(*a, **k))
    session.step()
    assert calls == []  # the kept step
    session.step()
    assert len(calls) == 1  # the update reused the kept pass; one pass measures it


def test_momentum_alone_does_not_predict_the_first_update_again(question):
    # There is no velocity before the first update: momentum cannot change it.
    session = TrainingSession(question, preset_config("seed"))
    assert not session.predict_first_update()
    session.update_settings(momentum=0.9, predict=False)
    assert not session.predict_first_update()
    session.update_settings(learning_rate=0.05, predict=False)
    assert session.predict_first_update()


def test_a_prediction_left_for_later_is_made_by_the_first_step(question):
    """On a large run the window leaves the prediction to a task aside; a Step taken before it
    must not leave iteration 0 predicting a first update other than the one made."""
    session = TrainingSession(question, preset_config("seed"))
    session.update_settings(learning_rate=5e-8, predict=False)
    assert any(f.code == "first_update_kills" for f in session.latest.findings)  # not yet
    first = session.step()
    initial = session.record(0)
    assert not any(f.code == "first_update_kills" for f in initial.findings)
    assert not any(f.code == "first_update_kills" for f in session.history.findings)
    twin = TrainingSession(question, preset_config("seed", learning_rate=5e-8))
    np.testing.assert_array_equal(first.params["conv.weight"], twin.step().params["conv.weight"])
    # Computed ahead while idle, the left-over prediction is that step, made once.
    again = TrainingSession(question, preset_config("seed"))
    again.update_settings(learning_rate=5e-8, predict=False)
    again.compute_ahead()
    assert not any(f.code == "first_update_kills" for f in again.latest.findings)
    ahead = again._ahead
    assert again.step() is ahead.record


@pytest.mark.parametrize("learning_rate,offers_rate", [(1e-12, False), (1e-3, True)])
def test_a_large_gradient_offers_a_smaller_rate_only_while_its_updates_are_large(
    question, learning_rate, offers_rate
):
    """A robustness pass: with calm updates the "Conv gradient norm" card offered ÷10 at every
    other iteration, for ever: a smaller rate does not make the gradient smaller."""
    config = preset_config(
        "recommended",
        learning_rate=learning_rate,
        pixel_scaling="raw",
        conv_init=InitSpec("normal", {"mean": 0.0, "std": 0.002}),
        classifier_init=InitSpec("normal", {"mean": 0.0, "std": 3.0}),
    )  # (a conv gradient norm of about 1,600)
    record = TrainingSession(question, config).step()
    (large,) = [f for f in record.findings if f.code == "large_gradient"]
    changes = [fix.changes for fix in large.fixes]
    # (the rate is the one every card of the iteration agrees on: one_learning_rate)
    assert any(set(change) == {"learning_rate"} for change in changes) == offers_rate
    assert {"pixel_scaling": "unit"} in changes and {"clip_norm": 1.0} in changes
