"""The Setup panel: every training setting as a form.

Each edit builds a new config from the controller's (``with_changes``, which validates). A
refused value is shown at its field and nothing is applied. Live settings (learning rate,
momentum, clipping) apply at once; anything else is kept pending by the controller until Reset,
announced by a banner. The form always shows the settings that will be used: the pending ones if
there are any, otherwise the running ones.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path

from PySide6.QtCore import QEvent, QSettings, Qt, Slot
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from inspector.tasks import BackgroundTask
from inspector.views.data import mute
from inspector.views.widgets import scroll_area
from model.config import (
    DTYPES,
    LIVE_FIELDS,
    MAX_FILTERS,
    MAX_KERNEL,
    PIXEL_SCALING_LABELS,
    PIXEL_SCALINGS,
    UPDATE_MODE_LABELS,
    UPDATE_MODES,
    ConfigError,
    TrainingConfig,
)
from model.files import readable
from model.formatting import format_count
from model.init import INIT_KINDS, INIT_LABELS
from model.layers import output_size
from model.presets import PRESETS
from model.weights_file import (
    StartingWeights,
    WeightsFileError,
    read_weights,
    whole_network_beside,
)

LAST_CONFIG_KEY = "setup/last_config"
WEIGHTS_FOLDER_KEY = "setup/weights_folder"
WEIGHTS_FILTER = "NumPy weights (*.npz *.npy);;All files (*)"
NO_WEIGHTS_FILE = "None: both layers are drawn from the initialisers below."
#: log10 of the slider's ends: down to the question's fix (÷1e+07 of 0.5 is 5e-08), which
#: left the slider's handle stuck at 0.000001.
LR_SLIDER_MIN, LR_SLIDER_MAX = -8.0, 2.0
LR_SLIDER_STEPS_PER_DECADE = 100
CUSTOM, LAST = "custom", "last"
CUSTOM_NOTE = "Your own settings: they match no preset."
LAST_NOTE = "The settings you used last time."

#: Plain names of the settings, as the banner and the error messages say them.
FIELD_NAMES = {
    "num_filters": "number of filters",
    "kernel_size": "kernel size",
    "padding": "padding",
    "activation": "activation",
    "negative_slope": "leaky slope",
    "initial_weights": "weights file",
    "conv_init": "filter initialiser",
    "classifier_init": "classifier initialiser",
    "pixel_scaling": "pixel scaling",
    "update_mode": "update mode",
    "shuffle": "shuffle",
    "learning_rate": "learning rate",
    "momentum": "momentum",
    "clip_norm": "gradient clipping",
    "seed": "seed",
    "dtype": "number precision",
    "history_budget_mb": "history memory",
}

ACTIVATION_LABELS = {
    "relu": "ReLU  max(0, x)",
    "leaky_relu": "Leaky ReLU",
    "identity": "None (identity)",
}
PADDING_LABELS = {"same": "same (output H×W)", "valid": "valid (output shrinks)"}
DTYPE_LABELS = {"float64": "float64 (double)", "float32": "float32 (single)"}

STYLE = """
QLineEdit[error="true"] {
    border: 2px solid #c62828; border-radius: 3px; background: #fff5f5;
}
QLabel[role="error"] { color: #b71c1c; }
QLabel[pending="true"] { color: #8a5a00; font-weight: bold; }
QFrame#pendingBanner {
    background: #fff4e5; border: 1px solid #f0b449; border-radius: 4px;
}
QFrame#pendingBanner QLabel { color: #5d4000; }
"""


def _camel(field: str) -> str:
    head, *rest = field.split("_")
    return head + "".join(part.capitalize() for part in rest)


def _plain(value: float) -> str:
    """A number as a person would type it: 0.01, 1e-05, 0.5, 49678.5; with every digit it
    needs to be read back as the same number (a momentum of 0.9999999999999999 showed "1",
    which Enter then refused, and edited rates lost their last digits)."""
    text = f"{value:.10g}"
    return text if float(text) == value else repr(float(value))


def _show_number(edit: QLineEdit, value: float) -> None:
    """Write ``value`` into ``edit`` and show its start: a number longer than the field (a
    learning rate of 0.004641588834 picked on the outcome map) otherwise showed its last
    digits, "04641588834"."""
    edit.setText(_plain(value))
    edit.setCursorPosition(0)


def _short(value: float) -> str:
    """Four significant digits, for notes: -0.04, 0.2722, 1.5e+04."""
    return f"{value:.4g}"


def _parse(field: str, text: str) -> float:
    """``text`` as a finite float, or a ``ConfigError`` for ``field`` that says what is wrong."""
    stripped = text.strip()
    if not stripped:
        raise ConfigError(field, "is empty: enter a number")
    try:
        value = float(stripped)
    except ValueError:
        # A decimal comma ("0,5", a teacher's) is not read as a point: "1,000" could be either.
        point = " written with a decimal point (0.5, not 0,5)" if "," in stripped else ""
        raise ConfigError(field, f"must be a number{point}, got {stripped!r}") from None
    if not math.isfinite(value):
        raise ConfigError(field, f"must be a finite number, got {stripped!r}")
    return value


def _set_flag(widget: QWidget, name: str, value: bool) -> None:
    """Set a style-sheet property and restyle the widget."""
    if widget.property(name) == value:
        return
    widget.setProperty(name, value)
    widget.style().unpolish(widget)
    widget.style().polish(widget)


def _mark_error(widget: QWidget, on: bool) -> None:
    """Frame ``widget`` in red (line edits, by style sheet) or tint it (spin boxes, whose native
    arrows a style sheet would replace)."""
    if isinstance(widget, QSpinBox):
        palette = QPalette()
        if on:
            palette = widget.palette()
            palette.setColor(QPalette.ColorRole.Base, QColor("#ffcdd2"))
        widget.setPalette(palette)
        widget.lineEdit().setPalette(palette)
        widget.setProperty("error", on)
        return
    _set_flag(widget, "error", on)


def _info_label(name: str, kind=QLabel) -> QLabel:
    label = kind(objectName=name)
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    mute(label)
    font = label.font()
    font.setPointSizeF(font.pointSizeF() - 1)
    label.setFont(font)
    return label


class _SteadyLabel(QLabel):
    """A wrapped label, text at the top, as tall as the tallest of its ``texts`` would be at
    its width, so that a new text does not move what lies below it. (A teacher's second click
    on ×10 landed in Momentum: the first had turned the preset's four-line description into
    "Custom".)"""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.setAlignment(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop)
        self._texts: tuple[str, ...] = ()
        self._heights: dict[int, int] = {}  # width -> height the texts need

    @property
    def texts(self) -> tuple[str, ...]:
        return self._texts

    def set_texts(self, texts) -> None:
        texts = tuple(texts)
        if texts != self._texts:
            self._texts = texts
            self._heights.clear()
            self.updateGeometry()

    def changeEvent(self, event) -> None:  # noqa: N802 - Qt override
        if event.type() in (QEvent.Type.FontChange, QEvent.Type.StyleChange):
            self._heights.clear()  # (measured in the old font)
        super().changeEvent(event)

    def heightForWidth(self, width: int) -> int:  # noqa: N802 - Qt override
        own = super().heightForWidth(width)
        if not self._texts:
            return own
        if width not in self._heights:
            # Measured as this label would lay the text out (a font metrics estimate wrapped
            # differently, a line apart).
            scratch = QLabel()
            scratch.setWordWrap(True)
            scratch.setFont(self.font())
            scratch.setContentsMargins(self.contentsMargins())
            heights = []
            for text in self._texts:
                scratch.setText(text)
                heights.append(scratch.heightForWidth(width))
            self._heights[width] = max(heights)
        return max(own, self._heights[width])


def _error_label(name: str) -> QLabel:
    label = QLabel(objectName=name)
    label.setWordWrap(True)
    label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    label.setProperty("role", "error")
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    label.hide()
    return label


def _combo(name: str, labels: dict, tooltip: str) -> QComboBox:
    combo = QComboBox(objectName=name)
    for key, text in labels.items():
        combo.addItem(text, key)
    combo.setToolTip(tooltip)
    combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
    combo.setMinimumContentsLength(10)
    return combo


def _select(combo: QComboBox, key) -> None:
    index = combo.findData(key)
    if index >= 0:
        combo.setCurrentIndex(index)


#: The Learning group's title, and its title while a preset's live setting waits for Reset.
LEARNING_TITLE = "Learning · applies immediately"
LEARNING_WAITS_TITLE = "Learning · the preset's value waits for Reset"


def _pending_text(changed: set[str]) -> str:
    """The banner over pending settings: those that need new weights, and live ones that
    wait with them (a preset's learning rate) with how to use them at once instead."""
    weights = [FIELD_NAMES[n] for n in FIELD_NAMES if n in changed and n not in LIVE_FIELDS]
    live = [FIELD_NAMES[n] for n in FIELD_NAMES if n in changed and n in LIVE_FIELDS]
    parts = []
    if weights:
        parts.append(f"{', '.join(weights)} (they need new weights)")
    if live:
        parts.append(
            f"{', '.join(live)} (chosen with {'them' if weights else 'the preset'}; "
            "a value typed there applies at once)"
        )
    return "<b>These changes apply on Reset:</b> " + "; ".join(parts) + "."


class InitEditor(QWidget):
    """Kind and parameters of one initialiser; shows only the current kind's parameters and
    what He/Xavier compute for this layer."""

    def __init__(self, prefix: str, tooltip: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.prefix = prefix
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)
        self.kind = _combo(f"{prefix}Kind", INIT_LABELS, tooltip)
        layout.addWidget(self.kind)
        self.edits: dict[str, QLineEdit] = {}
        self._pages: dict[str, QWidget] = {}
        for kind, defaults in INIT_KINDS.items():
            page = QWidget()
            row = QHBoxLayout(page)
            row.setContentsMargins(0, 0, 0, 0)
            row.setSpacing(4)
            for name in defaults:
                edit = QLineEdit(objectName=f"{prefix}{name.capitalize()}")
                edit.setToolTip(_PARAM_TIPS[name])
                edit.setMinimumWidth(50)
                # A field wider than the dock makes the form lay the row out for that width
                # and clip the wrapped notes under it.
                edit.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
                row.addWidget(QLabel(name))
                row.addWidget(edit, 1)
                self.edits[name] = edit
            page.setVisible(bool(defaults))
            self._pages[kind] = page
            layout.addWidget(page)
        self.info = _info_label(f"{prefix}Info")
        layout.addWidget(self.info)
        self.error = _error_label(f"{prefix}Error")
        layout.addWidget(self.error)

    def current_kind(self) -> str:
        return self.kind.currentData()

    def show_kind(self, kind: str) -> None:
        for name, page in self._pages.items():
            page.setVisible(name == kind and bool(INIT_KINDS[name]))

    def fill(self, spec) -> None:
        _select(self.kind, spec.kind)
        for name, value in spec.params.items():
            _show_number(self.edits[name], value)
        self.show_kind(spec.kind)

    def fill_defaults(self, kind: str) -> None:
        for name, value in INIT_KINDS[kind].items():
            _show_number(self.edits[name], value)
        self.show_kind(kind)

    def read(self, field: str) -> dict:
        """The initialiser as ``TrainingConfig`` takes it. A parameter that is not a finite
        number raises ``_WidgetError`` (a ``ConfigError`` for ``field`` and its edit)."""
        kind = self.current_kind()
        params = {}
        for name in INIT_KINDS[kind]:
            try:
                params[name] = _parse(field, self.edits[name].text())
            except ConfigError as exc:
                raise _WidgetError(
                    ConfigError(field, f"{name} {exc.message}"), self.edits[name]
                ) from None
        return {"kind": kind, "params": params}

    def describe(self, spec, fan_in: int, fan_out: int) -> str:
        """Plain-language note of what ``spec`` draws for a layer with these fans."""
        p = spec.params
        if spec.kind == "he_normal":
            std = math.sqrt(2.0 / fan_in)
            return f"std = √(2 / fan-in {fan_in:,}) = {_short(std)}"
        if spec.kind == "xavier_uniform":
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            return f"uniform in ±{_short(limit)} = ±√(6 / ({fan_in:,} + {fan_out:,}))"
        if spec.kind == "uniform":
            if p["low"] >= 0:
                return "Every weight ≥ 0: all weights start with the same sign."
            return f"Mean {_short((p['low'] + p['high']) / 2)}."
        if spec.kind == "normal":
            low, high = p["mean"] - 2 * p["std"], p["mean"] + 2 * p["std"]
            return f"95% of weights in [{_short(low)}, {_short(high)}]."
        return "Every weight equal: all filters start identical and stay identical."


class _WidgetError(Exception):
    """A ``ConfigError`` together with the widget the user typed it into."""

    def __init__(self, error: ConfigError, widget: QWidget) -> None:
        super().__init__(str(error))
        self.error = error
        self.widget = widget


_PARAM_TIPS = {
    "low": "Smallest weight the uniform initialiser can draw.",
    "high": "Largest weight the uniform initialiser can draw.",
    "mean": "Centre of the normal distribution the weights are drawn from.",
    "std": "Spread (standard deviation) of the normal distribution; 0.02 is a common choice.",
    "value": "The value every weight starts at.",
}


class SetupView(QWidget):
    """The "Setup" dock: presets, initialisers, learning rate and every other setting.

    Public: ``show_record(record)`` (notes when the shown iteration ran at another learning
    rate), ``shown_config()`` (the settings the form shows: pending or running).
    """

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._controller = controller
        self.setObjectName("setupView")
        self.setStyleSheet(STYLE)
        self._filling = False
        self._field_widgets: dict[str, QWidget] = {}
        self._error_labels: dict[str, QLabel] = {}
        self._row_labels: dict[str, QLabel] = {}
        self._tooltips: dict[QWidget, str] = {}
        self._marked: set[QWidget] = set()
        self._last_config, self._last_weights = self._read_last_config()
        self._weights_task: BackgroundTask | None = None
        self._build()
        controller.config_changed.connect(self._on_config_changed)
        controller.pending_config_changed.connect(self._on_pending_changed)
        controller.session_reset.connect(self._on_session_reset)
        controller.dataset_changed.connect(self._refresh)
        controller.record_shown.connect(self.show_record)
        self._refresh()
        self.show_record(controller.shown)

    # -- construction -------------------------------------------------------------------------

    def _build(self) -> None:
        outer = QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.setSpacing(0)

        self._banner = QFrame(objectName="pendingBanner")
        banner = QVBoxLayout(self._banner)
        banner.setContentsMargins(8, 6, 8, 6)
        banner.setSpacing(4)
        self._banner_text = QLabel(objectName="pendingText")
        self._banner_text.setWordWrap(True)
        banner.addWidget(self._banner_text)
        self._reset_button = QPushButton("Reset now", objectName="resetNowButton")
        self._reset_button.setToolTip(
            "Start the run again from iteration 0 with new weights and these settings."
        )
        self._reset_button.clicked.connect(self._controller.reset)
        row = QHBoxLayout()
        row.addStretch(1)
        row.addWidget(self._reset_button)
        banner.addLayout(row)
        self._banner.hide()
        wrapper = QWidget()
        wrap = QVBoxLayout(wrapper)
        wrap.setContentsMargins(6, 6, 6, 0)
        wrap.addWidget(self._banner)
        outer.addWidget(wrapper)

        body = QWidget()
        layout = QVBoxLayout(body)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(8)
        layout.addWidget(self._build_preset())
        layout.addWidget(self._build_learning())
        layout.addWidget(self._build_init())
        layout.addWidget(self._build_network())
        layout.addWidget(self._build_run())
        layout.addStretch(1)
        outer.addWidget(scroll_area(body, "setupScroll", across=False), 1)

    def _form(self, title: str) -> tuple[QGroupBox, QFormLayout]:
        group = QGroupBox(title)
        form = QFormLayout(group)
        form.setContentsMargins(8, 6, 8, 8)
        form.setHorizontalSpacing(8)
        form.setVerticalSpacing(6)
        form.setFieldGrowthPolicy(QFormLayout.FieldGrowthPolicy.AllNonFixedFieldsGrow)
        form.setLabelAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.DontWrapRows)
        return group, form

    def _add_row(
        self,
        form: QFormLayout,
        field: str,
        text: str,
        widget: QWidget,
        tooltip: str,
        *,
        extra: QWidget | None = None,
    ) -> QLabel:
        """A form row with ``widget`` (and optionally a composite ``extra`` holding it), an
        error label under it, and a row label that is marked when the value is pending."""
        holder = QWidget()
        column = QVBoxLayout(holder)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(2)
        column.addWidget(extra or widget)
        error = _error_label(f"{_camel(field)}Error")
        column.addWidget(error)
        label = QLabel(text)
        label.setToolTip(tooltip)
        widget.setToolTip(tooltip)
        form.addRow(label, holder)
        self._field_widgets[field] = widget
        self._error_labels[field] = error
        self._row_labels[field] = label
        self._tooltips[widget] = tooltip
        return label

    def _line_edit(self, field: str, width: int = 90) -> QLineEdit:
        edit = QLineEdit(objectName=_camel(field))
        edit.setMinimumWidth(width)
        edit.editingFinished.connect(lambda: self._submit_text(field, edit))
        return edit

    def _build_preset(self) -> QGroupBox:
        group = QGroupBox("Preset")
        layout = QVBoxLayout(group)
        layout.setContentsMargins(8, 6, 8, 8)
        self._preset = QComboBox(objectName="presetCombo")
        self._preset.setToolTip(
            "Named starting points. Choosing one fills the form; it applies on Reset."
        )
        self._preset.setSizeAdjustPolicy(
            QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
        )
        self._preset.activated.connect(self._on_preset_chosen)
        layout.addWidget(self._preset)
        self._preset_note = _info_label("presetDescription", _SteadyLabel)
        layout.addWidget(self._preset_note)
        return group

    def _build_learning(self) -> QGroupBox:
        group, form = self._form(LEARNING_TITLE)
        self._learning_group = group
        self._lr = self._line_edit("learning_rate")
        self._lr_down = QPushButton("÷10", objectName="learningRateDown")
        self._lr_down.setToolTip("Divide the learning rate by 10")
        self._lr_up = QPushButton("×10", objectName="learningRateUp")
        self._lr_up.setToolTip("Multiply the learning rate by 10")
        for button, factor in ((self._lr_down, 0.1), (self._lr_up, 10.0)):
            button.setFixedWidth(40)
            button.clicked.connect(lambda _c=False, f=factor: self._scale_learning_rate(f))
        self._lr_slider = QSlider(Qt.Orientation.Horizontal, objectName="learningRateSlider")
        self._lr_slider.setRange(
            round(LR_SLIDER_MIN * LR_SLIDER_STEPS_PER_DECADE),
            round(LR_SLIDER_MAX * LR_SLIDER_STEPS_PER_DECADE),
        )
        self._lr_slider.setPageStep(LR_SLIDER_STEPS_PER_DECADE)
        self._lr_slider.setToolTip("Learning rate on a log scale, 1e-8 to 100")
        self._lr_slider.valueChanged.connect(self._on_lr_slider_moved)
        self._lr_slider.sliderReleased.connect(self._apply_lr_slider)
        composite = QWidget()
        grid = QVBoxLayout(composite)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(2)
        line = QHBoxLayout()
        line.setSpacing(3)
        line.addWidget(self._lr, 1)
        line.addWidget(self._lr_down)
        line.addWidget(self._lr_up)
        grid.addLayout(line)
        grid.addWidget(self._lr_slider)
        ticks = QHBoxLayout()
        ticks.setContentsMargins(0, 0, 0, 0)
        for text, align in (
            ("1e-8", Qt.AlignmentFlag.AlignLeft),
            ("0.001", Qt.AlignmentFlag.AlignHCenter),
            ("100", Qt.AlignmentFlag.AlignRight),
        ):
            tick = _info_label("")
            tick.setText(text)
            tick.setAlignment(align)
            ticks.addWidget(tick, 1)
        grid.addLayout(ticks)
        self._lr_note = _info_label("learningRateNote")
        self._lr_note.hide()
        grid.addWidget(self._lr_note)
        self._add_row(
            form,
            "learning_rate",
            "Learning rate",
            self._lr,
            "How far each update moves the weights along the gradient: new = old − rate × "
            "gradient. Too large and the weights jump far past a good value. Type e.g. 0.01 "
            "or 1e-3 and press Enter.",
            extra=composite,
        )
        self._momentum = self._line_edit("momentum")
        self._add_row(
            form,
            "momentum",
            "Momentum",
            self._momentum,
            "Fraction of the previous update added to the next one (0 = plain SGD, 0.9 is "
            "common). Must be at least 0 and below 1.",
        )
        self._clip_enabled = QCheckBox("Clip at", objectName="clipEnabled")
        self._clip_enabled.toggled.connect(self._on_clip_toggled)
        self._clip = self._line_edit("clip_norm", 60)
        clip_row = QWidget()
        clip_layout = QHBoxLayout(clip_row)
        clip_layout.setContentsMargins(0, 0, 0, 0)
        clip_layout.addWidget(self._clip_enabled)
        clip_layout.addWidget(self._clip, 1)
        tip = (
            "Gradient clipping: when the length (norm) of the whole gradient exceeds this "
            "value, it is scaled down to it, so one bad image cannot make a huge update."
        )
        self._clip_enabled.setToolTip(tip)
        self._add_row(form, "clip_norm", "Gradient norm", self._clip, tip, extra=clip_row)
        return group

    def _build_init(self) -> QGroupBox:
        group, form = self._form("Initial weights · apply on Reset")
        self._build_weights_file(form)
        self._conv_init = InitEditor(
            "convInit",
            "How the filter weights are drawn at the start. Weights centred on zero (normal, "
            "He, Xavier) let a filter respond to some patterns positively and others "
            "negatively; all-positive weights (uniform 0..1) do not.",
        )
        self._classifier_init = InitEditor(
            "classifierInit",
            "How the classifier's weights (one per ReLU output) are drawn at the start.",
        )
        for field, editor, text in (
            ("conv_init", self._conv_init, "Filters"),
            ("classifier_init", self._classifier_init, "Classifier"),
        ):
            editor.kind.currentIndexChanged.connect(
                lambda _i, f=field, e=editor: self._on_init_kind(f, e)
            )
            for edit in editor.edits.values():
                edit.editingFinished.connect(
                    lambda f=field, e=editor, w=edit: self._submit_init(f, e, w)
                )
            label = QLabel(text)
            label.setToolTip(editor.kind.toolTip())
            label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignTop)
            form.addRow(label, editor)
            self._field_widgets[field] = editor.kind
            self._error_labels[field] = editor.error
            self._row_labels[field] = label
            self._tooltips[editor.kind] = editor.kind.toolTip()
            for edit in editor.edits.values():
                self._tooltips[edit] = edit.toolTip()
        return group

    def _build_weights_file(self, form: QFormLayout) -> None:
        self._weights_load = QPushButton("Load…", objectName="weightsLoadButton")
        self._weights_load.clicked.connect(self._load_weights_file)
        self._weights_clear = QPushButton("Clear", objectName="weightsClearButton")
        self._weights_clear.setToolTip("Draw both layers from the initialisers again.")
        self._weights_clear.clicked.connect(self._clear_weights_file)
        self._weights_info = _info_label("weightsFileInfo")
        extra = QWidget()
        column = QVBoxLayout(extra)
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(3)
        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        buttons.addWidget(self._weights_load)
        buttons.addWidget(self._weights_clear)
        buttons.addStretch(1)
        column.addLayout(buttons)
        column.addWidget(self._weights_info)
        self._add_row(
            form,
            "initial_weights",
            "From a file",
            self._weights_load,
            "Start from the weights your own code started from (or a snapshot's .npz, to go on "
            "from its iteration): an .npz with conv.weight (F, 3, K, K) and optionally "
            "conv.bias (F,), classifier.weight (F·H'·W') and classifier.bias, or an .npy of "
            "filter weights. The filters' number and size become the file's; what it does not "
            "give is drawn from the initialisers below.",
            extra=extra,
        )
        self._tooltips[self._weights_clear] = self._weights_clear.toolTip()

    def _build_network(self) -> QGroupBox:
        group, form = self._form("Network · applies on Reset")
        self._filters = QSpinBox(objectName="numFilters")
        self._filters.setRange(1, MAX_FILTERS)
        self._kernel = QSpinBox(objectName="kernelSize")
        self._kernel.setRange(1, MAX_KERNEL)
        for field, spin, text, tip in (
            (
                "num_filters",
                self._filters,
                "Number of filters",
                "How many filters the convolution has (F). Each gives one ReLU output map.",
            ),
            (
                "kernel_size",
                self._kernel,
                "Kernel size",
                "Width and height of each filter (K); a filter has 3×K×K weights. 'same' padding "
                "needs an odd size.",
            ),
        ):
            spin.setKeyboardTracking(False)
            spin.valueChanged.connect(lambda value, f=field: self._submit(f, value))
            self._add_row(form, field, text, spin, tip)
        self._padding = _combo("padding", PADDING_LABELS, "")
        self._activation = _combo("activation", ACTIVATION_LABELS, "")
        for field, combo in (("padding", self._padding), ("activation", self._activation)):
            combo.currentIndexChanged.connect(
                lambda _i, f=field, c=combo: self._submit(f, c.currentData())
            )
        self._add_row(
            form,
            "padding",
            "Padding",
            self._padding,
            "'same' pads the image border so the output keeps the image size; 'valid' does "
            "not pad, so each side shrinks by K − 1.",
        )
        self._add_row(
            form,
            "activation",
            "Activation",
            self._activation,
            "What follows the convolution. ReLU outputs 0 for every negative input, and no "
            "gradient flows through a 0, so a filter whose outputs are all negative stops "
            "learning (a 'dead' filter). Leaky ReLU lets a small slope through.",
        )
        self._slope = self._line_edit("negative_slope", 60)
        self._add_row(
            form,
            "negative_slope",
            "Leaky slope",
            self._slope,
            "Leaky ReLU's output for negative inputs is slope × input (0 ≤ slope < 1).",
        )
        self._network_form = form
        return group

    def _build_run(self) -> QGroupBox:
        group, form = self._form("Data and updates · apply on Reset")
        self._pixels = _combo(
            "pixelScaling", {k: PIXEL_SCALING_LABELS[k] for k in PIXEL_SCALINGS}, ""
        )
        self._update_mode = _combo(
            "updateMode", {k: UPDATE_MODE_LABELS[k] for k in UPDATE_MODES}, ""
        )
        self._dtype = _combo("dtype", {k: DTYPE_LABELS[k] for k in DTYPES}, "")
        for field, combo in (
            ("pixel_scaling", self._pixels),
            ("update_mode", self._update_mode),
            ("dtype", self._dtype),
        ):
            combo.currentIndexChanged.connect(
                lambda _i, f=field, c=combo: self._submit(f, c.currentData())
            )
        self._add_row(
            form,
            "pixel_scaling",
            "Pixels",
            self._pixels,
            "How pixel values are given to the network. Raw 0..255 inputs make the "
            "convolution's outputs, and with them the gradients, hundreds of times larger "
            "than 0..1 inputs.",
        )
        self._shuffle = QCheckBox("Shuffle each epoch", objectName="shuffle")
        self._shuffle.toggled.connect(lambda checked: self._submit("shuffle", checked))
        mode = QWidget()
        mode_layout = QVBoxLayout(mode)
        mode_layout.setContentsMargins(0, 0, 0, 0)
        mode_layout.setSpacing(2)
        mode_layout.addWidget(self._update_mode)
        mode_layout.addWidget(self._shuffle)
        self._add_row(
            form,
            "update_mode",
            "Updates",
            self._update_mode,
            "One image at a time: an update after every image (as in the question). Full "
            "batch: one update from the mean gradient of all images.",
            extra=mode,
        )
        self._shuffle.setToolTip(
            "One image at a time only: visit the images in a new random order each epoch "
            "instead of dataset order."
        )
        self._seed = self._line_edit("seed", 80)
        self._reseed = QPushButton("Reseed", objectName="reseedButton")
        self._reseed.setToolTip("Start a new run now with a new random seed.")
        self._reseed.clicked.connect(self._controller.reseed)
        seed_row = QWidget()
        seed_layout = QHBoxLayout(seed_row)
        seed_layout.setContentsMargins(0, 0, 0, 0)
        seed_layout.addWidget(self._seed, 1)
        seed_layout.addWidget(self._reseed)
        self._add_row(
            form,
            "seed",
            "Seed",
            self._seed,
            "Decides the random initial weights and the shuffled order: the same seed and "
            "settings give exactly the same run.",
            extra=seed_row,
        )
        self._add_row(
            form,
            "dtype",
            "Precision",
            self._dtype,
            "Floating-point type of every number in the run. float32 is what most frameworks "
            "use (and the question's C++ code); float64 rounds less.",
        )
        return group

    # -- showing the config -------------------------------------------------------------------

    def shown_config(self) -> TrainingConfig:
        """The settings the form shows: the pending ones, else the running ones."""
        return self._controller.pending_config or self._controller.config

    @Slot(object)
    def show_record(self, record) -> None:
        """Note it when the shown iteration used another learning rate than the form's."""
        used = record.settings.learning_rate
        if record.iteration > 0 and used != self.shown_config().learning_rate:
            self._lr_note.setText(f"Iteration {record.iteration} used {_plain(used)}.")
            self._lr_note.show()
        else:
            self._lr_note.hide()

    @Slot(object)
    def _on_config_changed(self, config) -> None:
        self._store_last_config(config)
        self._refresh()

    @Slot(object)
    def _on_pending_changed(self, _config) -> None:
        self._refresh()

    @Slot(object)
    def _on_session_reset(self, _record) -> None:
        self._clear_errors()
        self._refresh()

    def _refresh(self, *_args) -> None:
        """Fill every field from ``shown_config()`` without emitting edits."""
        config = self.shown_config()
        self._filling = True
        try:
            self._fill(config)
        finally:
            self._filling = False
        self._show_pending()
        self._fill_presets(config)

    def _fill(self, config: TrainingConfig) -> None:
        blocked = [
            self._filters,
            self._kernel,
            self._padding,
            self._activation,
            self._pixels,
            self._update_mode,
            self._dtype,
            self._shuffle,
            self._clip_enabled,
            self._lr_slider,
            self._conv_init.kind,
            self._classifier_init.kind,
        ]
        for widget in blocked:
            widget.blockSignals(True)
        try:
            _show_number(self._lr, config.learning_rate)
            self._set_lr_slider(config.learning_rate)
            _show_number(self._momentum, config.momentum)
            clipped = config.clip_norm is not None
            self._clip_enabled.setChecked(clipped)
            self._clip.setEnabled(clipped)
            if clipped:
                _show_number(self._clip, config.clip_norm)
            elif not self._clip.text():
                self._clip.setText("1")
            self._filters.setValue(config.num_filters)
            self._kernel.setValue(config.kernel_size)
            _select(self._padding, config.padding)
            _select(self._activation, config.activation)
            _show_number(self._slope, config.negative_slope)
            self._network_form.setRowVisible(
                self._slope.parentWidget(), config.activation == "leaky_relu"
            )
            _select(self._pixels, config.pixel_scaling)
            _select(self._update_mode, config.update_mode)
            self._shuffle.setChecked(config.shuffle)
            self._shuffle.setEnabled(config.update_mode == "per_image")
            self._seed.setText(str(config.seed))
            _select(self._dtype, config.dtype)
            self._conv_init.fill(config.conv_init)
            self._classifier_init.fill(config.classifier_init)
            self._describe_inits(config)
            self._show_weights_file(config)
        finally:
            for widget in blocked:
                widget.blockSignals(False)

    def _fans(self, config: TrainingConfig) -> tuple[tuple[int, int], tuple[int, int]]:
        """(fan-in, fan-out) of the filters and of the classifier under ``config``."""
        k, f = config.kernel_size, config.num_filters
        height, width = self._controller.dataset.size
        try:
            out_h, out_w = output_size(height, width, k, config.padding)
        except ValueError:
            out_h = out_w = 0
        return (3 * k * k, f * k * k), (max(f * out_h * out_w, 1), 1)

    def _describe_inits(self, config: TrainingConfig) -> None:
        conv_fans, classifier_fans = self._fans(config)
        weights = config.initial_weights
        for editor, spec, fans, replaced in (
            (self._conv_init, config.conv_init, conv_fans, weights is not None),
            (
                self._classifier_init,
                config.classifier_init,
                classifier_fans,
                weights is not None and weights.gives_classifier(),
            ),
        ):
            editor.setEnabled(not replaced)
            if replaced:
                editor.info.setText(f"Not used: the weights come from {readable(weights.name)}.")
            else:
                editor.info.setText(editor.describe(spec, *fans))

    def _clear_weights_file(self) -> None:
        self._cancel_weights_read()
        self._submit("initial_weights", None)

    def _cancel_weights_read(self) -> None:
        """A file being read is not taken after all: Clear, a preset or the last session was
        chosen meanwhile (a review: the file read came in on top of them)."""
        if self._weights_task is not None:
            self._weights_task.cancel()

    def _show_weights_file(self, config: TrainingConfig) -> None:
        """The weights file row, and the network sizes the file decides (locked to it)."""
        weights = config.initial_weights
        from_file = weights is not None
        self._weights_clear.setEnabled(from_file)
        for spin in (self._filters, self._kernel):
            spin.setEnabled(not from_file)
            spin.setToolTip(
                f"Set by the weights file {readable(weights.name)} (Clear it to change this)."
                if from_file
                else self._tooltips.get(spin, "")
            )
        if self._weights_task is not None:
            return  # ("Reading mine.npz…" stays until it is read)
        if weights is None:
            self._weights_info.setText(NO_WEIGHTS_FILE)
            self._weights_info.setToolTip("")
            return
        drawn = "" if weights.gives_classifier() else " The classifier is drawn (not in the file)."
        beside = whole_network_beside(weights)
        if beside is not None:
            drawn += f" {beside} beside it holds the whole network."
        self._weights_info.setText(f"{weights.describe()}.{drawn}")
        self._weights_info.setToolTip(
            f"{readable(weights.path)}\n\nRead when loaded: Load it again to take changes made "
            "to the file since."
        )

    def _show_pending(self) -> None:
        pending = self._controller.pending_config
        running = self._controller.config
        changed = set()
        if pending is not None:
            changed = {
                f.name
                for f in dataclasses.fields(pending)
                if getattr(pending, f.name) != getattr(running, f.name)
            }
            self._banner_text.setText(_pending_text(changed))
            self._banner_text.setToolTip(
                "\n".join(
                    f"{FIELD_NAMES.get(n, n)}: {self._value_text(running, n)} → "
                    f"{self._value_text(pending, n)}"
                    for n in FIELD_NAMES
                    if n in changed
                )
            )
        self._banner.setVisible(pending is not None)
        # A live setting waits too when it came with a preset (or a fix) that needs a Reset.
        self._learning_group.setTitle(
            LEARNING_WAITS_TITLE if changed & LIVE_FIELDS else LEARNING_TITLE
        )
        for field, label in self._row_labels.items():
            is_pending = field in changed
            _set_flag(label, "pending", is_pending)
            tip = self._tooltips.get(self._field_widgets[field], "")
            if is_pending:
                tip = f"Applies on Reset (running now: {self._value_text(running, field)})\n\n{tip}"
            label.setToolTip(tip)

    @staticmethod
    def _value_text(config: TrainingConfig, field: str) -> str:
        value = getattr(config, field)
        if hasattr(value, "describe"):
            return value.describe()
        if value is None:
            return "off"
        if isinstance(value, float):
            return _plain(value)
        return str(value)

    def _set_lr_slider(self, learning_rate: float) -> None:
        position = math.log10(learning_rate) * LR_SLIDER_STEPS_PER_DECADE
        self._lr_slider.setValue(round(position))

    # -- presets and the last session ---------------------------------------------------------

    @staticmethod
    def _read_last_config() -> tuple[TrainingConfig | None, dict | None]:
        """The last session's settings without its weights file, and the entry naming that
        file: it is read only when the last session is chosen (not on the GUI thread at every
        start), and one changed or gone since costs the file, not every other setting (a
        review)."""
        text = QSettings().value(LAST_CONFIG_KEY, "", type=str)
        if not text:
            return None, None
        try:
            data = json.loads(text)
            config = TrainingConfig.from_dict({**data, "initial_weights": None})
        except (ValueError, TypeError, KeyError, AttributeError):
            return None, None
        entry = data.get("initial_weights")
        return config, entry if isinstance(entry, dict) else None

    def _choose_last_session(self) -> None:
        """Ask for the last session's settings, with its weights file read again; one that
        cannot be, or that does not fit the images loaded, is said at its row, and the other
        settings are taken."""
        self._cancel_weights_read()
        config, entry = self._last_config, self._last_weights
        if entry is not None:
            try:
                with_file = config.with_changes(initial_weights=StartingWeights.from_dict(entry))
                with_file.map_size(self._controller.dataset.size)
            except (WeightsFileError, ValueError) as exc:
                self._controller.request_config(config)
                self._refresh()
                self._show_error(
                    "initial_weights",
                    f"the last session's file is not used, so both layers are drawn: {exc}. "
                    "Load it again to start from it.",
                )
                return
            # (the entry is this config now: "Last session" stays chosen in the list)
            config = self._last_config = with_file
            self._last_weights = None
        self._controller.request_config(config)

    def _store_last_config(self, config: TrainingConfig) -> None:
        QSettings().setValue(LAST_CONFIG_KEY, json.dumps(config.to_dict()))

    def _fill_presets(self, config: TrainingConfig) -> None:
        combo = self._preset
        combo.blockSignals(True)
        combo.clear()
        chosen = None
        for name, preset in PRESETS.items():
            combo.addItem(preset.title, name)
            combo.setItemData(combo.count() - 1, preset.description, Qt.ItemDataRole.ToolTipRole)
            if preset.config == config:
                chosen = name
        last = self._last_config
        # (a weights file not read yet is a difference from every preset: a review found the
        # last session dropped when the file was all it had of its own)
        own = self._last_weights is not None
        if last is not None and (own or all(last != p.config for p in PRESETS.values())):
            combo.addItem("Last session", LAST)
            weights = self._last_weights
            named = ""
            if own and isinstance(weights.get("file"), str):
                named = f", weights from {readable(Path(weights['file']).name)}"
            combo.setItemData(
                combo.count() - 1,
                "The settings you used last time:\n" + self._summary(last) + named,
                Qt.ItemDataRole.ToolTipRole,
            )
            if chosen is None and last == config:
                chosen = LAST
        if chosen is None:
            combo.addItem("Custom", CUSTOM)
            combo.setItemData(
                combo.count() - 1,
                CUSTOM_NOTE,
                Qt.ItemDataRole.ToolTipRole,
            )
            chosen = CUSTOM
        _select(combo, chosen)
        combo.blockSignals(False)
        note = combo.itemData(combo.currentIndex(), Qt.ItemDataRole.ToolTipRole)
        label = self._preset_note
        # A preset chosen takes the room its description needs; a form edited away from it
        # ("Custom") keeps that room, so that nothing below moves under the mouse.
        keep = dict.fromkeys((*label.texts, label.text()))  # (each once, in order)
        label.set_texts(keep if chosen in (CUSTOM, LAST) else ())
        label.setText(note if chosen != LAST else LAST_NOTE)

    @staticmethod
    def _summary(config: TrainingConfig) -> str:
        return (
            f"{format_count(config.num_filters, 'filter')} "
            f"{config.kernel_size}×{config.kernel_size}, "
            f"filters {config.init_text('conv')}, learning rate {_plain(config.learning_rate)}, "
            f"pixels {config.pixel_scaling}"
        )

    @Slot(int)
    def _on_preset_chosen(self, index: int) -> None:
        key = self._preset.itemData(index)
        self._clear_errors()
        self._cancel_weights_read()
        if key in PRESETS:
            self._controller.apply_preset(key)
        elif key == LAST and self._last_config is not None:
            self._choose_last_session()
            return
        self._refresh()

    # -- edits --------------------------------------------------------------------------------

    def _submit_text(self, field: str, edit: QLineEdit) -> None:
        if self._filling:
            return
        text = edit.text().strip()
        if field == "seed":
            self._submit(field, text, widget=edit)
            return
        try:
            value = _parse(field, text)
        except ConfigError as exc:
            self._refuse(exc, edit)
            return
        self._submit(field, value, widget=edit)

    def _submit(self, field: str, value, *, widget: QWidget | None = None) -> bool:
        """Ask for ``field = value``: live settings apply now, others wait for Reset. A refused
        value is shown at its field and nothing changes. Returns whether it was accepted."""
        if self._filling:
            return False
        controller = self._controller
        try:
            requested = self.shown_config().with_changes(**{field: value})
            if requested.initial_weights is not None:
                # (padding changes the maps the file's classifier weights must fit)
                requested.map_size(self._controller.dataset.size)
        except ConfigError as exc:
            self._refuse(exc, widget if exc.field == field else None)
            return False
        except ValueError as exc:  # (WeightsDoNotFit, or a kernel larger than the images)
            self._refuse(ConfigError(field, str(exc)), widget)
            return False
        self._clear_errors()
        if field in LIVE_FIELDS:
            controller.update_live(**{field: getattr(requested, field)})
        else:
            controller.request_config(requested)
        self._refresh()
        return True

    def _ask_weights_file(self) -> str:
        """The weights file the user picks ('' when cancelled)."""
        stored = QSettings().value(WEIGHTS_FOLDER_KEY, "", type=str)
        start = stored if stored and os.path.isdir(stored) else str(Path.home())
        path, _selected = QFileDialog.getOpenFileName(
            self, "Start from weights in a file", start, WEIGHTS_FILTER
        )
        return path

    @Slot()
    def _load_weights_file(self) -> None:
        """Read the file the user picks, in the background (a large one takes seconds), then
        ask for a run from it (``_use_weights``)."""
        path = self._ask_weights_file()
        if not path or self._weights_task is not None:
            return
        QSettings().setValue(WEIGHTS_FOLDER_KEY, str(Path(path).parent))
        task = BackgroundTask(lambda _progress, _cancelled: read_weights(path), self)
        self._weights_task = task
        task.done.connect(self._use_weights)
        task.failed.connect(self._weights_unread)
        task.ended.connect(self._weights_read_ended)
        self._weights_load.setEnabled(False)
        self._weights_info.setText(f"Reading {readable(Path(path).name)}…")
        task.start()

    @Slot(object, str)
    def _weights_unread(self, exc: Exception, _details: str) -> None:
        self._clear_errors()
        self._refresh()
        message = str(exc) if isinstance(exc, (WeightsFileError, MemoryError)) else repr(exc)
        self._show_error("initial_weights", message or "too large to read into memory")

    @Slot()
    def _weights_read_ended(self) -> None:
        self._weights_task = None
        self._weights_load.setEnabled(True)
        self._show_weights_file(self.shown_config())  # (in place of "Reading …")

    @Slot(object)
    def _use_weights(self, weights) -> None:
        """Ask for a run from ``weights``, with their number and size of filters; weights that
        cannot start a run on these images are refused at the row."""
        try:
            requested = self.shown_config().with_weights(weights)
            requested.map_size(self._controller.dataset.size)
        except ConfigError as exc:
            self._refuse(ConfigError("initial_weights", exc.message), None)
            return
        except ValueError as exc:
            self._refuse(ConfigError("initial_weights", str(exc)), None)
            return
        self._clear_errors()
        self._controller.request_config(requested)
        self._refresh()

    def _submit_init(self, field: str, editor: InitEditor, widget: QWidget) -> None:
        if self._filling:
            return
        try:
            spec = editor.read(field)
        except _WidgetError as exc:
            self._refuse(exc.error, exc.widget)
            return
        self._submit(field, spec, widget=widget)

    def _on_init_kind(self, field: str, editor: InitEditor) -> None:
        if self._filling:
            return
        kind = editor.current_kind()
        current = getattr(self.shown_config(), field)
        if current.kind == kind:
            editor.fill(current)
        else:
            editor.fill_defaults(kind)
        self._submit_init(field, editor, editor.kind)

    @Slot(bool)
    def _on_clip_toggled(self, checked: bool) -> None:
        self._clip.setEnabled(checked)
        if not checked:
            self._submit("clip_norm", None, widget=self._clip_enabled)
            return
        self._submit_text("clip_norm", self._clip)

    def _scale_learning_rate(self, factor: float) -> None:
        value = float(f"{self.shown_config().learning_rate * factor:.12g}")
        _show_number(self._lr, value)
        self._submit("learning_rate", value, widget=self._lr)

    @Slot(int)
    def _on_lr_slider_moved(self, position: int) -> None:
        if self._filling:
            return
        value = float(f"{10 ** (position / LR_SLIDER_STEPS_PER_DECADE):.3g}")
        _show_number(self._lr, value)
        if not self._lr_slider.isSliderDown():
            self._apply_lr_slider()

    @Slot()
    def _apply_lr_slider(self) -> None:
        self._submit_text("learning_rate", self._lr)

    # -- errors -------------------------------------------------------------------------------

    def _refuse(self, error: ConfigError, widget: QWidget | None) -> None:
        """Show ``error`` at its field. Every other field goes back to the settings in use (an
        earlier refused entry included); the refused field keeps what was entered."""
        target = widget or self._field_widgets.get(error.field)
        typed = target.text() if isinstance(target, QLineEdit) else None
        number = target.value() if isinstance(target, QSpinBox) else None
        self._clear_errors()
        self._refresh()
        if typed is not None:
            target.setText(typed)
        if number is not None:
            target.blockSignals(True)
            target.setValue(number)
            target.blockSignals(False)
        self._show_error(error.field, error.message, widget)

    def _show_error(self, field: str, message: str, widget: QWidget | None = None) -> None:
        """Show ``message`` under ``field`` and frame ``widget`` (default: the field's own)."""
        label = self._error_labels.get(field)
        target = widget or self._field_widgets.get(field)
        if label is None or target is None:
            return
        name = FIELD_NAMES.get(field, field).capitalize()
        joined = message.startswith(("must", "is ", "needs"))
        text = f"{name} {message}" if joined else f"{name}: {message}"
        label.setText(text)
        label.show()
        _mark_error(target, True)
        target.setToolTip(text)
        self._marked.add(target)

    def _clear_errors(self) -> None:
        for label in self._error_labels.values():
            label.hide()
            label.clear()
        for widget in self._marked:
            _mark_error(widget, False)
            widget.setToolTip(self._tooltips.get(widget, ""))
        self._marked.clear()
