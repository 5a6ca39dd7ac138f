"""What the Filters and the ReLU-outputs views share: they draw the shown record with colour
scales chosen by a mode ('Per iteration', 'Whole run', 'Custom' with its limit), can share those
scales with the same view of another run, and skip drawing while hidden.

``ScaledRecordView`` is a mixin placed before ``QWidget`` in the view's bases. The view sets
``_record``, ``_stale`` and ``_scale_link`` in its ``__init__``, builds its heading, mode box and
limit box with ``_build_scale_controls`` and defines ``_draw_record(record)``.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QComboBox,
    QDoubleSpinBox,
    QHBoxLayout,
    QLabel,
    QSizePolicy,
)

from inspector import plotting
from inspector.layout_guard import LayoutGuard
from model.record import StepRecord

SCALE_MODES = ("Per iteration", "Whole run", "Custom")
SCALE_WORDS = {"Per iteration": "per iteration", "Whole run": "whole run", "Custom": "custom"}


class ScaledRecordView:
    """Mixin: record drawing that waits while hidden, colour-scale controls and scale sharing."""

    _record: StepRecord | None
    _stale: bool
    _scale_link: plotting.ScaleLink | None

    def show_record(self, record: StepRecord) -> None:
        """Draw ``record`` now, or keep it for when the view is shown again (hidden tab)."""
        self._record = record
        if self.window().isVisible() and not self.isVisible():
            self._stale = True  # in a hidden tab: draw when shown (or exported)
            return
        self._draw_record(record)

    def showEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().showEvent(event)
        if self._stale and self._record is not None:
            self._draw_when_shown()

    def _draw_when_shown(self) -> None:
        """Draw the record kept while hidden (a view may defer it)."""
        self.show_record(self._record)

    def _catch_up(self) -> None:
        """Draw a record skipped while hidden, so that what is exported is the shown one."""
        if self._stale and self._record is not None:
            self._draw_record(self._record)

    def link_scale(self, link: plotting.ScaleLink | None) -> None:
        """Share colour scales with the same view of another run (``None`` to stop)."""
        if self._scale_link is not None:
            self._scale_link.leave(self)
            self._scale_link.changed.disconnect(self._on_link_changed)
        self._scale_link = link
        if link is not None:
            link.changed.connect(self._on_link_changed)
        if self._record is not None:
            self.show_record(self._record)

    def _on_link_changed(self, member) -> None:
        if member is not self and self._record is not None:
            self.show_record(self._record)

    def _on_scale_changed(self, *_args) -> None:
        self._custom.setVisible(self._scale_mode.currentText() == "Custom")
        if self._record is not None:
            self.show_record(self._record)

    def _build_scale_controls(
        self,
        heading: QLabel,
        prefix: str,
        tips: Sequence[str],
        mode_tip: str,
        custom_tip: str,
        custom_prefix: str = "",
    ) -> None:
        """Create ``_heading`` (bold, elided by its own class if it can), ``_scale_mode`` and
        ``_custom``; object names start with ``prefix`` ('filter' → 'filterScaleMode')."""
        self._heading = heading
        bold = heading.font()
        bold.setBold(True)
        heading.setFont(bold)
        heading.setMinimumWidth(40)
        heading.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)

        self._scale_mode = QComboBox(self)
        self._scale_mode.setObjectName(f"{prefix}ScaleMode")
        for index, (mode, tip) in enumerate(zip(SCALE_MODES, tips, strict=True)):
            self._scale_mode.addItem(mode)
            self._scale_mode.setItemData(index, tip, Qt.ItemDataRole.ToolTipRole)
        self._scale_mode.setToolTip(mode_tip)
        self._scale_mode.currentIndexChanged.connect(self._on_scale_changed)

        self._custom = QDoubleSpinBox(self)
        self._custom.setObjectName(f"{prefix}ScaleCustom")
        self._custom.setPrefix(custom_prefix)
        self._custom.setDecimals(6)
        self._custom.setRange(1e-6, 1e12)
        self._custom.setValue(1.0)
        self._custom.setMaximumWidth(130)
        self._custom.setStepType(QDoubleSpinBox.StepType.AdaptiveDecimalStepType)
        self._custom.setKeyboardTracking(False)
        self._custom.setToolTip(custom_tip)
        self._custom.setVisible(False)
        self._custom.valueChanged.connect(self._on_scale_changed)

    def _scale_controls_row(self) -> QHBoxLayout:
        """The controls row begun: heading, 'Colour scale:', mode and limit boxes."""
        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(LayoutGuard(self._heading, self), 1)
        caption = QLabel("Colour scale:", self)
        caption.setBuddy(self._scale_mode)
        controls.addWidget(caption)
        controls.addWidget(self._scale_mode)
        controls.addWidget(self._custom)
        return controls
