"""The Setup panel, driven as a user would: typing into fields, choosing from combos, pressing
buttons; refused values stay at their field, live ones apply at once, others wait for Reset."""

import math

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFrame,
    QGroupBox,
    QLabel,
    QLineEdit,
    QPushButton,
    QSlider,
    QSpinBox,
)

from inspector.views.setup import LR_SLIDER_STEPS_PER_DECADE, SetupView
from model.init import InitSpec
from model.presets import PRESETS, preset_config


def make_view(qtbot, controller):
    view = SetupView(controller)
    qtbot.addWidget(view)
    view.resize(360, 700)
    view.show()
    qtbot.waitExposed(view)
    return view


@pytest.fixture
def view(qtbot, controller):
    return make_view(qtbot, controller)


def field(view, name, kind=QLineEdit):
    widget = view.findChild(kind, name)
    assert widget is not None, name
    return widget


def type_and_enter(qtbot, edit, text):
    edit.setFocus()
    edit.clear()
    qtbot.keyClicks(edit, text)
    qtbot.keyClick(edit, Qt.Key.Key_Return)


def choose(qtbot, combo, key):
    """Pick the entry whose data is ``key`` as a click in the open list does: it becomes
    current and ``activated`` is emitted (only user choices emit it)."""
    target = combo.findData(key)
    assert target >= 0, key
    combo.setCurrentIndex(target)
    combo.activated.emit(target)


def load_weights(qtbot, view):
    """Press Load… (the file is read in the background) and wait until it is read."""
    qtbot.mouseClick(field(view, "weightsLoadButton", QPushButton), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view._weights_task is None, timeout=10000)  # noqa: SLF001


def banner(view):
    return view.findChild(QFrame, "pendingBanner")


@pytest.mark.parametrize("text", ["abc", "-1", "0", "nan", "inf", "1e400", "", "1e13", "0.1.2"])
def test_refused_learning_rate_is_shown_at_the_field(qtbot, view, controller, text):
    before = controller.config
    lr = field(view, "learningRate")
    type_and_enter(qtbot, lr, text)
    error = field(view, "learningRateError", QLabel)
    assert error.isVisibleTo(view)
    assert error.text().startswith("Learning rate")
    assert lr.property("error") is True
    assert lr.toolTip() == error.text()
    assert controller.config == before
    assert controller.pending_config is None
    assert not banner(view).isVisibleTo(view)


def test_a_decimal_comma_is_refused_with_the_reason(qtbot, view, controller):
    """A teacher typed 0,5: "must be a number" did not say what was wrong with it."""
    type_and_enter(qtbot, field(view, "learningRate"), "0,5")
    error = field(view, "learningRateError", QLabel)
    assert "written with a decimal point (0.5, not 0,5)" in error.text()
    assert controller.config.learning_rate == 0.5  # (the question's, unchanged)


def test_valid_learning_rate_applies_immediately_while_training(
    qtbot, view, controller, step_and_wait
):
    step_and_wait(controller, 2)
    lr = field(view, "learningRate")
    type_and_enter(qtbot, lr, "abc")
    type_and_enter(qtbot, lr, "0.001")
    assert controller.config.learning_rate == 0.001
    assert controller.latest_iteration == 2  # no reset
    assert controller.pending_config is None
    assert not field(view, "learningRateError", QLabel).isVisibleTo(view)
    assert lr.property("error") is False
    slider = field(view, "learningRateSlider", QSlider)
    assert slider.value() == -3 * LR_SLIDER_STEPS_PER_DECADE
    qtbot.mouseClick(field(view, "learningRateUp", QPushButton), Qt.MouseButton.LeftButton)
    assert controller.config.learning_rate == 0.01
    assert lr.text() == "0.01"
    qtbot.mouseClick(field(view, "learningRateDown", QPushButton), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(field(view, "learningRateDown", QPushButton), Qt.MouseButton.LeftButton)
    assert controller.config.learning_rate == 0.0001
    # Keyboard on the log slider: one page is one decade.
    slider.setFocus()
    qtbot.keyClick(slider, Qt.Key.Key_PageUp)
    assert math.isclose(controller.config.learning_rate, 0.001)
    assert step_and_wait(controller, 1).settings.learning_rate == controller.config.learning_rate


def test_conv_initialiser_waits_for_reset(qtbot, view, controller, step_and_wait):
    step_and_wait(controller, 1)
    running = controller.config
    choose(qtbot, field(view, "convInitKind", QComboBox), "normal")
    type_and_enter(qtbot, field(view, "convInitMean"), "0")
    type_and_enter(qtbot, field(view, "convInitStd"), "0.02")
    assert field(view, "convInitStd").isVisibleTo(view)
    assert not field(view, "convInitLow").isVisibleTo(view)
    assert controller.config == running
    assert controller.pending_config.conv_init == InitSpec("normal", {"mean": 0, "std": 0.02})
    assert banner(view).isVisibleTo(view)
    text = field(view, "pendingText", QLabel).text()
    assert "apply on Reset" in text and "filter initialiser" in text
    assert "95% of weights in [-0.04, 0.04]" in field(view, "convInitInfo", QLabel).text()

    qtbot.mouseClick(field(view, "resetNowButton", QPushButton), Qt.MouseButton.LeftButton)
    assert controller.config.conv_init == InitSpec("normal", {"mean": 0, "std": 0.02})
    assert controller.shown.iteration == 0
    assert controller.pending_config is None
    assert not banner(view).isVisibleTo(view)


def test_refused_initialiser_parameter_is_shown_at_it(qtbot, view, controller):
    before = controller.config
    type_and_enter(qtbot, field(view, "convInitHigh"), "abc")
    error = field(view, "convInitError", QLabel)
    assert error.isVisibleTo(view) and "high must be a number" in error.text()
    assert field(view, "convInitHigh").property("error") is True
    type_and_enter(qtbot, field(view, "convInitHigh"), "-5")  # below low = 0
    assert "must not exceed" in error.text()
    assert controller.config == before and controller.pending_config is None


def test_he_initialiser_shows_its_computed_std(qtbot, view, controller):
    choose(qtbot, field(view, "classifierInitKind", QComboBox), "he_normal")
    features = 1 * 32 * 32  # one filter, 'same' padding on 32x32 images
    info = field(view, "classifierInitInfo", QLabel).text()
    assert f"fan-in {features:,}" in info
    assert f"{math.sqrt(2 / features):.4g}" in info
    assert controller.pending_config.classifier_init.kind == "he_normal"


def test_even_kernel_with_same_padding_is_refused_at_kernel_size(qtbot, view, controller):
    kernel = field(view, "kernelSize", QSpinBox)
    kernel.setFocus()
    kernel.lineEdit().selectAll()
    qtbot.keyClicks(kernel, "4")
    qtbot.keyClick(kernel, Qt.Key.Key_Return)
    error = field(view, "kernelSizeError", QLabel)
    assert error.isVisibleTo(view) and "odd kernel size" in error.text()
    assert kernel.value() == 4  # what was entered stays, marked
    assert kernel.property("error") is True
    assert controller.pending_config is None and controller.config.kernel_size == 3
    # Choosing 'valid' padding makes the even kernel acceptable.
    choose(qtbot, field(view, "padding", QComboBox), "valid")
    assert controller.pending_config.padding == "valid"
    qtbot.keyClick(kernel, Qt.Key.Key_Up)
    assert controller.pending_config.kernel_size == 4
    assert not error.isVisibleTo(view) and kernel.property("error") is False


def test_recommended_preset_applies_on_reset_and_fills_the_form(qtbot, view, controller):
    combo = field(view, "presetCombo", QComboBox)
    assert combo.currentData() == "seed"
    choose(qtbot, combo, "recommended")
    assert controller.config == PRESETS["seed"].config
    assert banner(view).isVisibleTo(view)
    # The preset's learning rate waits with the rest, and the Learning group says so rather
    # than "applies immediately"; the banner does not say it needs new weights.
    text = banner(view).findChild(QLabel, "pendingText").text()
    assert "pixel scaling (they need new weights)" in text
    assert "learning rate (chosen with them; a value typed there applies at once)" in text
    learning = next(g for g in view.findChildren(QGroupBox) if g.title().startswith("Learning"))
    assert learning.title() == "Learning · the preset's value waits for Reset"
    qtbot.mouseClick(field(view, "resetNowButton", QPushButton), Qt.MouseButton.LeftButton)
    assert learning.title() == "Learning · applies immediately"
    assert controller.config == PRESETS["recommended"].config
    assert combo.currentData() == "recommended"
    assert field(view, "learningRate").text() == "0.01"
    assert field(view, "convInitKind", QComboBox).currentData() == "normal"
    assert field(view, "convInitStd").text() == "0.02"
    assert field(view, "pixelScaling", QComboBox).currentData() == "unit"
    assert not banner(view).isVisibleTo(view)


def test_custom_appears_when_the_form_matches_no_preset(qtbot, view, controller):
    combo = field(view, "presetCombo", QComboBox)
    assert combo.findData("custom") < 0
    type_and_enter(qtbot, field(view, "momentum"), "0.5")
    assert controller.config.momentum == 0.5
    assert combo.currentData() == "custom"


def test_last_session_is_offered_in_a_new_view(qtbot, controller, question_dataset):
    from inspector.controller import SessionController

    first = make_view(qtbot, controller)
    assert field(first, "presetCombo", QComboBox).findData("last") < 0
    type_and_enter(qtbot, field(first, "learningRate"), "0.001")
    assert controller.config.learning_rate == 0.001

    fresh = SessionController(question_dataset, preset_config("seed"))
    try:
        second = make_view(qtbot, fresh)
        combo = field(second, "presetCombo", QComboBox)
        assert combo.findData("last") >= 0
        assert combo.currentData() == "seed"
        choose(qtbot, combo, "last")
        assert fresh.config.learning_rate == 0.001
        assert combo.currentData() == "last"
    finally:
        fresh.shutdown()


def test_form_follows_config_changes_from_elsewhere(qtbot, view, controller):
    seen = []
    controller.pending_config_changed.connect(seen.append)
    controller.apply_preset("recommended")
    assert len(seen) == 1  # filling the form requested nothing more
    controller.reset()
    assert field(view, "learningRate").text() == "0.01"
    assert field(view, "pixelScaling", QComboBox).currentData() == "unit"
    assert controller.pending_config is None
    assert seen[-1] is None and len(seen) == 2


def test_live_change_applies_now_and_stays_in_the_pending_settings(qtbot, view, controller):
    choose(qtbot, field(view, "pixelScaling", QComboBox), "unit")
    assert controller.pending_config.pixel_scaling == "unit"
    type_and_enter(qtbot, field(view, "learningRate"), "0.02")
    assert controller.config.learning_rate == 0.02  # applied to the running session
    assert controller.config.pixel_scaling == "raw"
    assert controller.pending_config.learning_rate == 0.02  # and kept for after Reset
    assert controller.pending_config.pixel_scaling == "unit"
    assert banner(view).isVisibleTo(view)
    assert "pixel scaling" in field(view, "pendingText", QLabel).text()
    assert "learning rate" not in field(view, "pendingText", QLabel).text()
    qtbot.mouseClick(field(view, "resetNowButton", QPushButton), Qt.MouseButton.LeftButton)
    assert controller.config.learning_rate == 0.02
    assert controller.config.pixel_scaling == "unit"


def test_leaky_slope_shown_only_for_leaky_relu_and_validated(qtbot, view, controller):
    slope = field(view, "negativeSlope")
    assert not slope.isVisibleTo(view)
    choose(qtbot, field(view, "activation", QComboBox), "leaky_relu")
    assert slope.isVisibleTo(view)
    type_and_enter(qtbot, slope, "1.5")
    assert "Leaky slope must be in [0, 1)" in field(view, "negativeSlopeError", QLabel).text()
    assert controller.pending_config.negative_slope == 0.01
    type_and_enter(qtbot, slope, "0.1")
    assert controller.pending_config.negative_slope == 0.1
    assert not field(view, "negativeSlopeError", QLabel).isVisibleTo(view)


def test_clipping_checkbox_and_value(qtbot, view, controller):
    clip = field(view, "clipNorm")
    assert not clip.isEnabled()
    qtbot.mouseClick(field(view, "clipEnabled", QCheckBox), Qt.MouseButton.LeftButton)
    assert controller.config.clip_norm == 1.0
    type_and_enter(qtbot, clip, "0")
    assert field(view, "clipNormError", QLabel).isVisibleTo(view)
    assert controller.config.clip_norm == 1.0
    type_and_enter(qtbot, clip, "5")
    assert controller.config.clip_norm == 5.0
    qtbot.mouseClick(field(view, "clipEnabled", QCheckBox), Qt.MouseButton.LeftButton)
    assert controller.config.clip_norm is None
    assert controller.pending_config is None


def test_note_when_the_shown_iteration_used_another_learning_rate(
    qtbot, view, controller, step_and_wait, show_and_wait
):
    step_and_wait(controller, 1)
    note = field(view, "learningRateNote", QLabel)
    assert not note.isVisibleTo(view)
    type_and_enter(qtbot, field(view, "learningRate"), "0.01")
    step_and_wait(controller, 1)
    assert not note.isVisibleTo(view)
    show_and_wait(controller, 1)
    assert note.isVisibleTo(view) and note.text() == "Iteration 1 used 0.5."


def test_reseed_starts_a_new_run_with_another_seed(qtbot, view, controller, step_and_wait):
    step_and_wait(controller, 1)
    seed = field(view, "seed")
    assert seed.text() == "4"
    qtbot.mouseClick(field(view, "reseedButton", QPushButton), Qt.MouseButton.LeftButton)
    assert controller.shown.iteration == 0
    assert seed.text() == str(controller.config.seed)
    type_and_enter(qtbot, seed, "-3")
    assert "Seed must be between 0 and" in field(view, "seedError", QLabel).text()
    type_and_enter(qtbot, seed, "4")
    assert controller.pending_config.seed == 4


def test_a_long_number_put_in_a_field_shows_its_start(qtbot, view, controller):
    """A cell picked on the outcome map starts a run at a learning rate of 0.004641588834; the
    field showed "04641588834", its end."""
    controller.request_config(
        preset_config("recommended", learning_rate=0.004641588834).with_changes(
            conv_init=InitSpec("normal", {"mean": 0.0, "std": 0.0316227766})
        )
    )
    controller.reset()
    for name in ("learningRate", "convInitStd"):
        edit = field(view, name)
        assert float(edit.text()) in (0.004641588834, 0.0316227766)
        assert edit.cursorPosition() == 0


@pytest.mark.parametrize(
    "name,value", [("momentum", 0.9999999999999999), ("learningRate", 0.123456789012345)]
)
def test_a_number_shown_in_a_field_reads_back_as_the_same_number(
    qtbot, view, controller, name, value
):
    """A robustness pass: a momentum of 0.9999999999999999 showed "1", which Enter then
    refused; a learning rate of 0.123456789012345 showed "0.123456789"."""
    edit = field(view, name)
    type_and_enter(qtbot, edit, repr(value))
    config_name = "momentum" if name == "momentum" else "learning_rate"
    assert getattr(controller.config, config_name) == value
    assert float(edit.text()) == value
    qtbot.keyClick(edit, Qt.Key.Key_Return)  # the shown text again: the same, accepted
    assert not field(view, f"{name}Error", QLabel).isVisibleTo(view)
    assert getattr(controller.config, config_name) == value


def test_the_slider_reaches_the_rate_the_question_needs(qtbot, view, controller):
    """The seed preset's fix, ÷1e+07 of 0.5, left the slider's handle at its end (1e-6)."""
    slider = field(view, "learningRateSlider", QSlider)
    type_and_enter(qtbot, field(view, "learningRate"), "5e-08")
    assert controller.config.learning_rate == 5e-08
    assert slider.minimum() < slider.value() == round(math.log10(5e-08) * 100)


def test_the_form_stays_put_when_the_preset_becomes_custom(qtbot, view, controller):
    """A teacher clicked ×10 twice: the first click turned the preset's four-line description
    into the one line of "Custom", the form moved up, and the second click landed in
    Momentum."""
    controller.start_over(preset_config("recommended"))  # as `--preset recommended` opens
    up = view.findChild(QPushButton, "learningRateUp")
    combo = field(view, "presetCombo", QComboBox)
    qtbot.waitUntil(lambda: combo.currentData() == "recommended" and not banner(view).isVisible())
    qtbot.wait(100)  # laid out
    before = up.mapTo(view, up.rect().center())
    qtbot.mouseClick(up, Qt.MouseButton.LeftButton)
    assert combo.currentData() == "custom"
    qtbot.wait(100)
    assert up.mapTo(view, up.rect().center()) == before
    # However many edits follow, it measures two texts: the preset's and its own.
    for _ in range(5):
        qtbot.mouseClick(view.findChild(QPushButton, "learningRateDown"), Qt.MouseButton.LeftButton)
    assert len(view.findChild(QLabel, "presetDescription").texts) == 2


def test_a_rate_typed_before_the_first_step_is_iteration_0s_in_the_window_too(
    qtbot, view, controller
):
    """Iteration 0 goes on with the rate the first update will use: its record (a snapshot
    saved of it) and the Curves table's first row (curves.csv) say it, not the old one."""
    type_and_enter(qtbot, field(view, "learningRate"), "0.001")
    assert controller.shown.iteration == 0
    assert controller.shown.settings.learning_rate == 0.001
    assert controller.metric_columns(("learning_rate",))["learning_rate"][0] == 0.001


def test_a_weights_file_starts_the_next_run_with_its_filters(
    qtbot, view, controller, tmp_path, monkeypatch
):
    """Load… takes the file's number and size of filters, shows what it gives and locks what it
    decides; Reset starts from its very numbers; Clear draws the weights again."""
    import numpy as np

    conv = np.linspace(-0.5, 0.5, 2 * 3 * 5 * 5).reshape(2, 3, 5, 5)
    np.savez(tmp_path / "mine.npz", **{"conv.weight": conv, "conv.bias": np.array([0.1, -0.1])})
    monkeypatch.setattr(view, "_ask_weights_file", lambda: str(tmp_path / "mine.npz"))
    load_weights(qtbot, view)

    pending = controller.pending_config
    assert pending.initial_weights.name == "mine.npz"
    assert (pending.num_filters, pending.kernel_size) == (2, 5)
    info = field(view, "weightsFileInfo", QLabel).text()
    assert info == (
        "mine.npz (2×3×5×5 filter weights, filter biases). The classifier is drawn (not in "
        "the file)."
    )
    assert not field(view, "numFilters", QSpinBox).isEnabled()
    assert not field(view, "kernelSize", QSpinBox).isEnabled()
    assert not field(view, "convInitKind", QComboBox).isEnabled()
    assert field(view, "classifierInitKind", QComboBox).isEnabled()
    assert "Not used: the weights come from mine.npz." in field(view, "convInitInfo", QLabel).text()
    assert "weights file" in field(view, "pendingText", QLabel).text()

    qtbot.mouseClick(field(view, "resetNowButton", QPushButton), Qt.MouseButton.LeftButton)
    np.testing.assert_array_equal(controller.shown.params["conv.weight"], conv)
    np.testing.assert_array_equal(controller.shown.params["conv.bias"], [0.1, -0.1])

    qtbot.mouseClick(field(view, "weightsClearButton", QPushButton), Qt.MouseButton.LeftButton)
    assert controller.pending_config.initial_weights is None
    assert field(view, "numFilters", QSpinBox).isEnabled()
    assert field(view, "weightsFileInfo", QLabel).text().startswith("None: both layers are drawn")


def test_a_weights_file_that_cannot_start_a_run_here_is_refused_at_its_row(
    qtbot, view, controller, tmp_path, monkeypatch
):
    import numpy as np

    chosen = {"path": ""}
    monkeypatch.setattr(view, "_ask_weights_file", lambda: chosen["path"])
    error = field(view, "initialWeightsError", QLabel)

    (tmp_path / "notes.txt").write_text("weights")
    chosen["path"] = str(tmp_path / "notes.txt")
    load_weights(qtbot, view)
    assert error.isVisibleTo(view)
    assert "notes.txt: is not a NumPy .npy or .npz file" in error.text()
    assert controller.pending_config is None

    # One classifier weight per ReLU output of 16×16 images, not of the question's 32×32.
    np.savez(
        tmp_path / "small.npz",
        **{"conv.weight": np.zeros((1, 3, 3, 3)), "classifier.weight": np.zeros(256)},
    )
    chosen["path"] = str(tmp_path / "small.npz")
    load_weights(qtbot, view)
    assert (
        "has 256 classifier weights (made for 16×16 maps?); 1 filter × 32×32 outputs"
        in error.text()
    )
    assert controller.pending_config is None

    chosen["path"] = ""  # cancelled: nothing changes, the error stays until the next edit
    load_weights(qtbot, view)
    assert controller.pending_config is None


def test_a_padding_the_weights_files_classifier_does_not_fit_is_refused_at_padding(
    qtbot, view, controller, tmp_path, monkeypatch
):
    """A review: 'valid' padding was taken, and Reset then said to clear the weights file."""
    import numpy as np

    arrays = {"conv.weight": np.zeros((1, 3, 3, 3)), "classifier.weight": np.zeros(32 * 32)}
    np.savez(tmp_path / "same.npz", **arrays)
    monkeypatch.setattr(view, "_ask_weights_file", lambda: str(tmp_path / "same.npz"))
    load_weights(qtbot, view)
    pending = controller.pending_config
    assert pending.initial_weights is not None
    choose(qtbot, field(view, "padding", QComboBox), "valid")
    padding = field(view, "paddingError", QLabel)
    assert padding.isVisibleTo(view)
    assert (
        "has 1,024 classifier weights (made for 32×32 maps?); 1 filter × 30×30 outputs"
        in padding.text()
    )
    assert controller.pending_config == pending


def test_the_last_sessions_weights_file_is_read_when_chosen_and_its_loss_costs_only_it(
    qtbot, controller, question_dataset, tmp_path
):
    """A review: a weights file changed since the last session made "Last session" vanish,
    learning rate and seed with it, and it was read on the GUI thread at every start."""
    import json

    import numpy as np
    from PySide6.QtCore import QSettings

    from inspector.controller import SessionController
    from inspector.views.setup import LAST_CONFIG_KEY
    from model.weights_file import read_weights

    np.save(tmp_path / "mine.npy", np.full((1, 3, 3, 3), 0.01))
    last = preset_config(
        "recommended", learning_rate=0.0123, initial_weights=read_weights(tmp_path / "mine.npy")
    )
    for changed in (False, True):
        # (a view stores the settings in use as the last session's: put them back each time)
        QSettings().setValue(LAST_CONFIG_KEY, json.dumps(last.to_dict()))
        if changed:
            np.save(tmp_path / "mine.npy", np.full((1, 3, 3, 3), 0.02))
        fresh = SessionController(question_dataset, preset_config("seed"))
        try:
            second = make_view(qtbot, fresh)
            combo = field(second, "presetCombo", QComboBox)
            assert "weights from mine.npy" in combo.itemData(
                combo.findData("last"), Qt.ItemDataRole.ToolTipRole
            )
            choose(qtbot, combo, "last")
            taken = fresh.pending_config
            assert taken.learning_rate == 0.0123 or fresh.config.learning_rate == 0.0123
            error = field(second, "initialWeightsError", QLabel)
            if changed:
                assert taken.initial_weights is None
                assert (
                    "the last session's file is not used, so both layers are drawn" in error.text()
                )
                assert "is not the file this config was written with" in error.text()
            else:
                assert taken.initial_weights == last.initial_weights
                assert not error.isVisibleTo(second)
        finally:
            fresh.shutdown()


def test_a_weights_file_is_read_off_the_gui_thread(qtbot, view, controller, tmp_path, monkeypatch):
    """A review: a 488 MiB file held the window for 3.2 s."""
    import threading

    import numpy as np

    from inspector.views import setup as setup_module
    from model.weights_file import read_weights

    np.save(tmp_path / "slow.npy", np.zeros((1, 3, 3, 3)))
    release = threading.Event()
    threads = []

    def slow_read(path):
        threads.append(threading.current_thread())
        release.wait(10)
        return read_weights(path)

    monkeypatch.setattr(setup_module, "read_weights", slow_read)
    monkeypatch.setattr(view, "_ask_weights_file", lambda: str(tmp_path / "slow.npy"))
    load = field(view, "weightsLoadButton", QPushButton)
    qtbot.mouseClick(load, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(threads))
    assert threads[0] is not threading.main_thread()
    assert not load.isEnabled()
    assert field(view, "weightsFileInfo", QLabel).text() == "Reading slow.npy…"
    release.set()
    qtbot.waitUntil(lambda: controller.pending_config is not None, timeout=10000)
    assert load.isEnabled()
    assert controller.pending_config.initial_weights.name == "slow.npy"


def test_a_last_session_whose_own_is_the_file_is_offered_and_stays_chosen(
    qtbot, question_dataset, tmp_path
):
    """Review 2: a preset's settings with a weights file lost "Last session" altogether; once
    taken, the list said Custom; a file that does not fit the images was taken anyway."""
    import json

    import numpy as np
    from PySide6.QtCore import QSettings

    from inspector.controller import SessionController
    from inspector.views.setup import LAST_CONFIG_KEY
    from model.weights_file import read_weights

    np.save(tmp_path / "mine.npy", np.full((1, 3, 3, 3), 0.01))
    last = preset_config("recommended").with_weights(read_weights(tmp_path / "mine.npy"))
    np.savez(
        tmp_path / "small.npz",
        **{"conv.weight": np.zeros((1, 3, 3, 3)), "classifier.weight": np.zeros(256)},
    )
    unfit = preset_config("recommended").with_weights(read_weights(tmp_path / "small.npz"))
    for stored, fits in ((last, True), (unfit, False)):
        QSettings().setValue(LAST_CONFIG_KEY, json.dumps(stored.to_dict()))
        fresh = SessionController(question_dataset, preset_config("seed"))
        try:
            view = make_view(qtbot, fresh)
            combo = field(view, "presetCombo", QComboBox)
            assert combo.findData("last") >= 0
            choose(qtbot, combo, "last")
            error = field(view, "initialWeightsError", QLabel)
            if fits:
                assert fresh.pending_config.initial_weights == stored.initial_weights
                assert combo.currentData() == "last"
            else:
                assert fresh.pending_config.initial_weights is None
                assert "has 256 classifier weights" in error.text()
        finally:
            fresh.shutdown()


def test_clear_or_a_preset_chosen_while_a_file_is_read_is_not_undone_by_it(
    qtbot, view, controller, tmp_path, monkeypatch
):
    import threading

    import numpy as np

    from inspector.views import setup as setup_module
    from model.weights_file import read_weights

    np.save(tmp_path / "slow.npy", np.zeros((1, 3, 3, 3)))
    np.save(tmp_path / "first.npy", np.ones((1, 3, 3, 3)))
    monkeypatch.setattr(view, "_ask_weights_file", lambda: str(tmp_path / "first.npy"))
    load_weights(qtbot, view)  # (a file loaded first, so that Clear can be pressed)
    assert controller.pending_config.initial_weights.name == "first.npy"
    monkeypatch.setattr(view, "_ask_weights_file", lambda: str(tmp_path / "slow.npy"))
    for undo in ("clear", "preset"):
        release = threading.Event()
        monkeypatch.setattr(
            setup_module, "read_weights", lambda path, r=release: r.wait(10) and read_weights(path)
        )
        qtbot.mouseClick(field(view, "weightsLoadButton", QPushButton), Qt.MouseButton.LeftButton)
        assert field(view, "weightsFileInfo", QLabel).text() == "Reading slow.npy…"
        type_and_enter(qtbot, field(view, "learningRate"), "0.002")  # an edit: still reading
        assert field(view, "weightsFileInfo", QLabel).text() == "Reading slow.npy…"
        if undo == "clear":
            qtbot.mouseClick(
                field(view, "weightsClearButton", QPushButton), Qt.MouseButton.LeftButton
            )
        else:
            choose(qtbot, field(view, "presetCombo", QComboBox), "shapes")
        release.set()
        qtbot.waitUntil(lambda: view._weights_task is None, timeout=10000)  # noqa: SLF001
        pending = controller.pending_config
        assert pending is None or pending.initial_weights is None, undo
        assert field(view, "weightsLoadButton", QPushButton).isEnabled()
