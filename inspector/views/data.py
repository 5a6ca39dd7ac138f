"""The Data panel: every image of the dataset with its label and what the shown iteration
predicts for it, and the ways to change the data (examples, a folder, added files, relabelling,
removing, drag and drop).

Thumbnails are rendered once per dataset (lazily, on first paint) and cached; a new record only
replaces the probability and loss arrays of the model and repaints, so following training costs
a few text draws for the visible cells.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPointF,
    QRect,
    QRectF,
    QSettings,
    QSize,
    Qt,
    QTimer,
    Slot,
)
from PySide6.QtGui import (
    QAction,
    QColor,
    QFont,
    QFontMetrics,
    QImage,
    QPainter,
    QPainterPath,
    QPalette,
    QPen,
    QPixmap,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QMenu,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QStyle,
    QStyledItemDelegate,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from inspector import dialogs
from inspector.layout_guard import LayoutGuard
from model.data import is_image_list
from model.formatting import format_compact, format_count, format_number
from model.record import NO_PREDICTION, predicted_label

THUMBNAIL_SIDE = 64
RIGHT_COLOR = QColor("#2e7d32")
WRONG_COLOR = QColor("#c62828")
UNKNOWN_COLOR = QColor("#9e9e9e")
BORDER = 3
IMAGE_FILTER = (
    "Images (*.png *.jpg *.jpeg *.bmp *.gif *.tif *.tiff *.webp *.ppm *.pgm);;All files (*)"
)
LAST_FOLDER_KEY = "data/last_folder"

LabelRole = Qt.ItemDataRole.UserRole + 1
CorrectRole = Qt.ItemDataRole.UserRole + 2
LinesRole = Qt.ItemDataRole.UserRole + 3
SkippedRole = Qt.ItemDataRole.UserRole + 4
CompactLinesRole = Qt.ItemDataRole.UserRole + 5


def class_text(class_names, label: int) -> str:
    """'cross (0)': a label as its class name and number ('no class' for ``NO_PREDICTION``,
    a probability that is not a number)."""
    if label == NO_PREDICTION:
        return "no class (P(1) is NaN)"
    return f"{class_names[label]} ({label})"


def thumbnail(image: np.ndarray, side: int = THUMBNAIL_SIDE) -> QPixmap:
    """(3, H, W) uint8 as a pixmap fitting ``side``×``side``: enlarged with nearest neighbour so
    the real pixels stay visible, shrunk smoothly."""
    rgb = np.ascontiguousarray(image.transpose(1, 2, 0))
    height, width = rgb.shape[:2]
    qimage = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
    scale = side / max(height, width)
    if scale >= 1:
        factor = max(int(scale), 1)
        mode = Qt.TransformationMode.FastTransformation
        target = QSize(width * factor, height * factor)
    else:
        mode = Qt.TransformationMode.SmoothTransformation
        target = QSize(max(round(width * scale), 1), max(round(height * scale), 1))
    return QPixmap.fromImage(qimage.scaled(target, Qt.AspectRatioMode.IgnoreAspectRatio, mode))


def mute(label: QLabel) -> None:
    """Give ``label`` a secondary text colour that stays readable in light and dark themes."""
    palette = label.palette()
    text = palette.color(QPalette.ColorRole.WindowText)
    back = palette.color(QPalette.ColorRole.Window)
    blend = QColor(
        round(0.62 * text.red() + 0.38 * back.red()),
        round(0.62 * text.green() + 0.38 * back.green()),
        round(0.62 * text.blue() + 0.38 * back.blue()),
    )
    palette.setColor(QPalette.ColorRole.WindowText, blend)
    label.setPalette(palette)


class ThumbnailModel(QAbstractListModel):
    """The dataset's images with their labels, and the shown record's prediction per image."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._dataset = None
        self._pixmaps: dict[int, QPixmap] = {}
        self._probabilities: np.ndarray | None = None
        self._losses: np.ndarray | None = None
        self._iteration: int | None = None

    @property
    def dataset(self):
        return self._dataset

    def set_dataset(self, dataset) -> None:
        """Show ``dataset``; pixmaps are kept when only labels changed (same pixel array)."""
        same_pixels = self._dataset is not None and dataset.images is self._dataset.images
        if same_pixels:
            self._dataset = dataset
            self._clear_record()
            self._changed()
            return
        self.beginResetModel()
        self._dataset = dataset
        self._pixmaps = {}
        self._clear_record()
        self.endResetModel()

    def set_record(self, record) -> bool:
        """Take the probabilities and losses of ``record``; False (and nothing taken) when the
        record is of other data.

        No ``dataChanged`` is emitted: QListView answers it by measuring every announced item
        again (O(N) per frame). The delegate reads these arrays when it paints, so the owner
        only repaints the viewport.
        """
        if self._dataset is None or record.probabilities.shape[0] != len(self._dataset):
            return False
        self._probabilities = record.probabilities
        self._losses = record.losses
        self._iteration = record.iteration
        return True

    def _clear_record(self) -> None:
        self._probabilities = self._losses = self._iteration = None

    def _changed(self) -> None:
        rows = self.rowCount()
        if rows:
            self.dataChanged.emit(self.index(0), self.index(rows - 1))

    def rowCount(self, parent=QModelIndex()) -> int:  # noqa: B008 - Qt's signature
        if parent.isValid() or self._dataset is None:
            return 0
        return len(self._dataset)

    def prediction(self, row: int) -> tuple[float, int, float] | None:
        """(probability of label 1, predicted label, loss) of ``row``, or None before a record."""
        if self._probabilities is None:
            return None
        probability = float(self._probabilities[row])
        return probability, predicted_label(probability), float(self._losses[row])

    def data(self, index, role=Qt.ItemDataRole.DisplayRole):
        if not index.isValid() or self._dataset is None:
            return None
        row = index.row()
        dataset = self._dataset
        label = int(dataset.labels[row])
        if role == Qt.ItemDataRole.DecorationRole:
            pixmap = self._pixmaps.get(row)
            if pixmap is None:
                pixmap = self._pixmaps[row] = thumbnail(dataset.images[row])
            return pixmap
        if role == LabelRole:
            return label
        if role == CorrectRole:
            predicted = self.prediction(row)
            return None if predicted is None else predicted[1] == label
        if role in (LinesRole, Qt.ItemDataRole.DisplayRole):
            lines = self._lines(row, label, format_number)
            return lines if role == LinesRole else "\n".join(lines)
        if role == CompactLinesRole:
            return self._lines(row, label, format_compact)
        if role == Qt.ItemDataRole.ToolTipRole:
            return self._tooltip(row, label)
        return None

    def _lines(self, row: int, label: int, number) -> tuple[str, ...]:
        """Label, P(1), prediction and loss of ``row``, numbers written by ``number``."""
        names = self._dataset.class_names
        predicted = self.prediction(row)
        if predicted is None:
            return (class_text(names, label),)
        probability, predicted_label, loss = predicted
        return (
            class_text(names, label),
            f"P(1) {number(probability)}",
            f"→ {class_text(names, predicted_label)}",
            f"loss {number(loss)}",
        )

    def _tooltip(self, row: int, label: int) -> str:
        names = self._dataset.class_names
        text = [self._dataset.paths[row], f"Label: {class_text(names, label)}"]
        native, (height, width) = self._dataset.native_sizes[row], self._dataset.size
        if native is not None and native != (height, width):
            text.append(
                f"Resized from {native[0]}×{native[1]} px to {height}×{width} (H×W), the "
                "aspect ratio not kept"
            )
        predicted = self.prediction(row)
        if predicted is not None:
            probability, predicted_label, loss = predicted
            verdict = "right" if predicted_label == label else "wrong"
            text += [
                f"At iteration {self._iteration}:",
                f"  probability of {class_text(names, 1)}: {format_number(probability, 6)}",
                f"  predicted {class_text(names, predicted_label)} ({verdict})",
                f"  loss of this image: {format_number(loss, 6)}",
            ]
        return "\n".join(text)


def _draw_mark(painter: QPainter, center: QPointF, radius: float, correct: bool) -> None:
    """A filled badge with a tick (right) or a cross (wrong), drawn as lines so it never
    depends on a font having the glyph."""
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(RIGHT_COLOR if correct else WRONG_COLOR)
    painter.drawEllipse(center, radius, radius)
    pen = QPen(QColor("white"), max(radius / 3.5, 1.5))
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    r = radius * 0.45
    path = QPainterPath()
    if correct:
        path.moveTo(center + QPointF(-r, 0))
        path.lineTo(center + QPointF(-r * 0.25, r * 0.75))
        path.lineTo(center + QPointF(r, -r * 0.7))
    else:
        path.moveTo(center + QPointF(-r, -r))
        path.lineTo(center + QPointF(r, r))
        path.moveTo(center + QPointF(-r, r))
        path.lineTo(center + QPointF(r, -r))
    painter.setBrush(Qt.BrushStyle.NoBrush)
    painter.drawPath(path)


class ThumbnailDelegate(QStyledItemDelegate):
    """Paints a cell: the image in a frame coloured by the prediction (green right, red wrong,
    grey before any record), a tick/cross badge, then label, P(1), prediction and loss."""

    PADDING = 4
    LINES = 4

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self._font = QFont()
        self._font.setPointSizeF(max(self._font.pointSizeF() - 1, 7))
        self._bold = QFont(self._font)
        self._bold.setBold(True)
        self._line_height = QFontMetrics(self._font).height()

    def sizeHint(self, option, index) -> QSize:
        width = THUMBNAIL_SIDE + 2 * BORDER + 2 * self.PADDING + 18
        height = THUMBNAIL_SIDE + 2 * BORDER + 2 * self.PADDING + self.LINES * self._line_height
        return QSize(width, height + 2)

    def frame_rect(self, cell: QRect) -> QRect:
        """Where the coloured frame around the image is drawn inside ``cell``."""
        side = THUMBNAIL_SIDE + 2 * BORDER
        return QRect(cell.x() + (cell.width() - side) // 2, cell.y() + self.PADDING, side, side)

    def paint(self, painter: QPainter, option, index) -> None:
        painter.save()
        cell = option.rect
        palette = option.palette
        if option.state & QStyle.StateFlag.State_Selected:
            highlight = QColor(palette.color(QPalette.ColorRole.Highlight))
            highlight.setAlpha(70)
            painter.fillRect(cell.adjusted(1, 1, -1, -1), highlight)
            painter.setPen(QPen(palette.color(QPalette.ColorRole.Highlight), 1))
            painter.drawRect(cell.adjusted(1, 1, -2, -2))
        correct = index.data(CorrectRole)
        color = UNKNOWN_COLOR if correct is None else (RIGHT_COLOR if correct else WRONG_COLOR)
        frame = self.frame_rect(cell)
        painter.fillRect(frame, color)
        inner = frame.adjusted(BORDER, BORDER, -BORDER, -BORDER)
        painter.fillRect(inner, QColor("white"))
        pixmap = index.data(Qt.ItemDataRole.DecorationRole)
        target = QRect(0, 0, pixmap.width(), pixmap.height())
        target.moveCenter(inner.center())
        painter.drawPixmap(target, pixmap)
        if correct is not None:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
            _draw_mark(painter, QPointF(frame.right() - 1, frame.top() + 1), 8.0, correct)
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, False)
        lines = index.data(LinesRole)
        compact = index.data(CompactLinesRole)
        text_rect = QRectF(cell.x() + 2, frame.bottom() + 3, cell.width() - 4, self._line_height)
        text_color = palette.color(QPalette.ColorRole.Text)
        for number, line in enumerate(lines):
            painter.setFont(self._bold if number == 0 else self._font)
            if number == 2 and correct is not None:
                painter.setPen(color)
            else:
                painter.setPen(text_color)
            metrics = QFontMetrics(painter.font())
            width = int(text_rect.width())
            if metrics.horizontalAdvance(line) > width:
                # A number that does not fit is written shorter (1.89e+06), never cut off;
                # only a long class name is elided.
                line = metrics.elidedText(compact[number], Qt.TextElideMode.ElideRight, width)
            painter.drawText(text_rect, Qt.AlignmentFlag.AlignHCenter, line)
            text_rect.translate(0, self._line_height)
        painter.restore()


class DataView(QWidget):
    """The "Data" dock: thumbnails, the data source and the ways to change the data.

    Public: ``show_record(record)``, ``open_folder()`` and ``add_images()`` (ask with a dialog,
    then load), ``context_menu()``, ``selected_rows()``, ``thumbnail_view`` (the QListView) and
    ``thumbnail_model``. Dialogs go through ``_ask_folder``, ``_ask_files`` and ``_ask_label``
    so tests can replace them, and ``confirm_new_run(action, question, dropped) -> bool``,
    asked before relabelling, removing or adding images drops the iterations trained so far.
    """

    def __init__(self, controller, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._controller = controller
        self.confirm_new_run = lambda *args: dialogs.ask_new_run(self, *args)
        self.setObjectName("dataView")
        self.setAcceptDrops(True)
        self._build()
        controller.dataset_changed.connect(self._on_dataset_changed)
        controller.session_reset.connect(self._on_session_reset)
        controller.record_shown.connect(self.show_record)
        controller.loading_changed.connect(self._on_loading_changed)
        controller.load_progress.connect(self._on_load_progress)
        controller.run_starting.connect(self._on_run_starting)
        self._on_dataset_changed(controller.dataset)
        self._on_loading_changed(controller.is_loading)
        self.show_record(controller.shown)

    # -- construction -------------------------------------------------------------------------

    def _build(self) -> None:
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(5)

        self._source_label = QLabel(objectName="dataSource")
        font = self._source_label.font()
        font.setBold(True)
        self._source_label.setFont(font)
        self._source_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self._counts_label = QLabel(objectName="dataCounts")
        self._counts_label.setWordWrap(True)
        note = QLabel("Changing the data starts a new run.", objectName="dataNote")
        mute(note)
        small = note.font()
        small.setPointSizeF(small.pointSizeF() - 1)
        note.setFont(small)
        for widget in (self._source_label, self._counts_label, note):
            layout.addWidget(widget)

        buttons = QHBoxLayout()
        buttons.setSpacing(4)
        self._open_button = self._button(
            "Open folder…",
            "openFolderButton",
            "Load a folder holding two sub-folders, one per label (the first in name order is "
            "label 0). You can also drop a folder onto this panel.",
            self.open_folder,
        )
        self._add_button = self._button(
            "Add images…",
            "addImagesButton",
            "Add image files with a label you choose; they are resized to the dataset's size. "
            "You can also drop image files onto this panel.",
            self.add_images,
        )
        self._remove_button = self._button(
            "Remove",
            "removeButton",
            "Remove the selected images from the dataset (Delete).",
            self._remove_selected,
        )
        for button in (self._open_button, self._add_button, self._remove_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        layout.addLayout(buttons)

        examples = QHBoxLayout()
        examples.setSpacing(4)
        examples.addWidget(QLabel("Examples:"))
        self._question_button = self._button(
            "Question example",
            "questionExampleButton",
            "The question's two images: a cross (label 0) and a circle (label 1).",
            lambda: self.load_example("question"),
        )
        self._shapes_button = self._button(
            "Shapes example",
            "shapesExampleButton",
            "80 crosses and circles in varied sizes, positions and colours.",
            lambda: self.load_example("shapes"),
        )
        examples.addWidget(self._question_button)
        examples.addWidget(self._shapes_button)
        examples.addStretch(1)
        layout.addLayout(examples)

        self._loading_row = QWidget(objectName="loadingRow")
        loading = QHBoxLayout(self._loading_row)
        loading.setContentsMargins(0, 0, 0, 0)
        self._progress = QProgressBar(objectName="loadProgress")
        self._progress.setTextVisible(True)
        self._cancel_button = self._button(
            "Cancel",
            "cancelLoadingButton",
            "Stop loading; the current data stays.",
            self._controller.cancel_loading,
        )
        self._progress_detail = QLabel(objectName="loadDetail")
        # Wrapped: a long detail ("The training process stopped; ...") would otherwise widen
        # the panel, and with it the Setup panel it shares a dock column with.
        self._progress_detail.setWordWrap(True)
        mute(self._progress_detail)
        bar = QVBoxLayout()
        bar.setSpacing(1)
        bar.addWidget(self._progress)
        bar.addWidget(self._progress_detail)
        loading.addLayout(bar, 1)
        loading.addWidget(self._cancel_button, 0, Qt.AlignmentFlag.AlignTop)
        layout.addWidget(self._loading_row)

        self._message = QLabel(objectName="dataMessage")
        self._message.setWordWrap(True)
        self._message.setStyleSheet(
            "background: #fff4e5; color: #6d4c00; border: 1px solid #f0c36d;"
            " border-radius: 3px; padding: 3px;"
        )
        self._message.hide()
        layout.addWidget(self._message)

        self._summary = QLabel(objectName="predictionSummary")
        self._summary.setWordWrap(True)
        layout.addWidget(LayoutGuard(self._summary, self))

        self.thumbnail_model = ThumbnailModel(self)
        self._delegate = ThumbnailDelegate(self)
        view = QListView(objectName="thumbnails")
        view.setViewMode(QListView.ViewMode.IconMode)
        view.setMovement(QListView.Movement.Static)
        view.setResizeMode(QListView.ResizeMode.Adjust)
        view.setWrapping(True)
        view.setUniformItemSizes(True)
        view.setLayoutMode(QListView.LayoutMode.Batched)
        view.setBatchSize(200)
        view.setSpacing(2)
        view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        view.setDragEnabled(False)
        view.setAcceptDrops(False)
        view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        view.setModel(self.thumbnail_model)
        view.setItemDelegate(self._delegate)
        view.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        view.customContextMenuRequested.connect(self._show_context_menu)
        view.selectionModel().selectionChanged.connect(self._update_actions)
        self.thumbnail_view = view
        layout.addWidget(view, 1)

        self._drop_hint = QLabel(
            "Drop a folder to load it,\nor image files to add them", self, objectName="dropHint"
        )
        self._drop_hint.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self._drop_hint.setStyleSheet(
            "background: rgba(25, 118, 210, 40); color: #0d47a1; font-weight: bold;"
            " border: 2px dashed #1976d2; border-radius: 6px;"
        )
        self._drop_hint.hide()

        self._skipped_toggle = QToolButton(objectName="skippedToggle")
        self._skipped_toggle.setCheckable(True)
        self._skipped_toggle.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self._skipped_toggle.setArrowType(Qt.ArrowType.RightArrow)
        self._skipped_toggle.setAutoRaise(True)
        self._skipped_toggle.setToolTip("Files that were found but could not be used, and why")
        self._skipped_toggle.toggled.connect(self._toggle_skipped)
        self._skipped_list = QListWidget(objectName="skippedList")
        self._skipped_list.setWordWrap(True)
        self._skipped_list.setAlternatingRowColors(True)
        self._skipped_list.setMaximumHeight(130)
        self._skipped_list.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._skipped_list.hide()
        layout.addWidget(self._skipped_toggle)
        layout.addWidget(self._skipped_list)

        self._label_actions = []
        for label in (0, 1):
            action = QAction(self, objectName=f"labelAs{label}Action")
            action.setShortcut(str(label))
            action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            action.triggered.connect(
                lambda _checked=False, value=label: self._label_selected(value)
            )
            view.addAction(action)
            self._label_actions.append(action)
        self._remove_action = QAction("Remove from dataset", self, objectName="removeAction")
        self._remove_action.setShortcut("Delete")
        self._remove_action.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        self._remove_action.triggered.connect(self._remove_selected)
        view.addAction(self._remove_action)

    def _button(self, text, name, tooltip, slot) -> QPushButton:
        button = QPushButton(text, objectName=name)
        button.setToolTip(tooltip)
        button.clicked.connect(slot)
        return button

    # -- drawing ------------------------------------------------------------------------------

    @Slot(object)
    def show_record(self, record) -> None:
        """Show ``record``'s probability, prediction and loss for every image."""
        if not self.thumbnail_model.set_record(record):
            self._summary.setText("")
            return
        self.thumbnail_view.viewport().update()
        dataset = self.thumbnail_model.dataset
        right = int(np.count_nonzero(record.predictions == dataset.labels))
        self._summary.setText(
            f"Iteration {record.iteration}: {right} of {len(dataset)} right · "
            f"mean loss {format_number(record.loss)}"
        )

    def selected_rows(self) -> list[int]:
        return sorted(index.row() for index in self.thumbnail_view.selectionModel().selectedRows())

    @Slot(object)
    def _on_dataset_changed(self, dataset) -> None:
        self.thumbnail_model.set_dataset(dataset)
        self._show_header(dataset)
        self._show_skipped(dataset.skipped)
        names = dataset.class_names
        for label, action in enumerate(self._label_actions):
            action.setText(f"Label as {class_text(names, label)}")
            action.setToolTip(
                f"Give the selected images label {label} ({names[label]}); key {label}"
            )
        self._update_actions()

    @Slot(object)
    def _on_session_reset(self, record) -> None:
        # A reset without new data leaves the thumbnails; new data arrives by dataset_changed,
        # but a dataset swapped in any other way is caught here.
        if self._controller.dataset is not self.thumbnail_model.dataset:
            self._on_dataset_changed(self._controller.dataset)
        else:
            self._show_header(self._controller.dataset)

    def _show_header(self, dataset) -> None:
        source = self._controller.dataset_source
        if source.startswith("example:"):
            name = source.split(":", 1)[1]
            title, tip = f"{name.capitalize()} example", f"Bundled example '{name}'"
        elif source == "files":
            title, tip = "Example with added files", "An example with image files added to it"
        elif is_image_list(source):
            title, tip = f"Image list: {Path(source).name}", source
        else:
            title, tip = f"Folder: {Path(source).name or source}", source
        self._source_label.setText(title)
        self._source_label.setToolTip(tip)
        height, width = dataset.size
        zeros, ones = dataset.label_counts()
        names = dataset.class_names
        images = "image" if len(dataset) == 1 else "images"
        resized = len(dataset.resized())
        # (Resized without keeping the aspect ratio: a photo of another shape is squashed,
        # which a learner should know before blaming the network; each image's tooltip says
        # its own size.)
        note = f" ({resized:,} resized from other sizes)" if resized else ""
        self._counts_label.setText(
            f"{len(dataset):,} {images} of {height}×{width} px{note} · "
            f"{class_text(names, 0)}: {zeros:,} · {class_text(names, 1)}: {ones:,}"
        )

    def _show_skipped(self, skipped) -> None:
        self._skipped_list.clear()
        count = len(skipped)
        self._skipped_toggle.setVisible(count > 0)
        self._skipped_toggle.setText(f"{count:,} file{'s' if count != 1 else ''} skipped")
        for path, reason in skipped:
            # (with its folder: which label's it is, as the file name alone does not say)
            item = QListWidgetItem(f"{Path(path).parent.name}/{Path(path).name}: {reason}")
            item.setData(SkippedRole, (path, reason))
            item.setToolTip(f"{path}\n{reason}")
            self._skipped_list.addItem(item)
        self._toggle_skipped(self._skipped_toggle.isChecked() and count > 0)

    @Slot(bool)
    def _toggle_skipped(self, expanded: bool) -> None:
        self._skipped_toggle.setArrowType(
            Qt.ArrowType.DownArrow if expanded else Qt.ArrowType.RightArrow
        )
        self._skipped_list.setVisible(expanded)

    # -- loading ------------------------------------------------------------------------------

    @Slot(bool)
    def _on_loading_changed(self, loading: bool) -> None:
        self._loading_row.setVisible(loading)
        if loading:
            self._show_busy("Loading images…", "Looking for image files", can_cancel=True)
        self._update_actions()

    def _show_busy(self, text: str, detail: str, *, can_cancel: bool) -> None:
        """The loading row, busy (no progress count yet), saying ``text`` and ``detail``."""
        self._loading_row.setVisible(True)
        self._progress.setRange(0, 0)
        self._progress.setFormat(text)
        self._progress_detail.setText(detail)
        self._cancel_button.setEnabled(can_cancel)

    @Slot(bool)
    def _on_run_starting(self, starting: bool) -> None:
        """A large new run is being made (after loading, or new labels): say so, busy."""
        if starting:
            what, detail = self._controller.starting_text
            self._show_busy(f"{what}…", detail, can_cancel=False)

    @Slot(int, int)
    def _on_load_progress(self, done: int, total: int) -> None:
        if total <= 0:
            return
        self._progress.setRange(0, total)
        self._progress.setValue(done)
        self._progress.setFormat("Loading images: %p%")
        # The loader counts file reads: with the automatic size every file is read twice
        # (header, then pixels), so this is not a count of images.
        self._progress_detail.setText(f"{done:,} of {total:,} file reads")

    # -- requests -----------------------------------------------------------------------------

    def _update_actions(self, *_args) -> None:
        loading = self._controller.is_loading
        has_selection = bool(self.thumbnail_view.selectionModel().hasSelection())
        for widget in (
            self._open_button,
            self._add_button,
            self._question_button,
            self._shapes_button,
        ):
            widget.setEnabled(not loading)
        for action in (*self._label_actions, self._remove_action):
            action.setEnabled(has_selection and not loading)
        self._remove_button.setEnabled(has_selection and not loading)

    def _start_folder(self) -> str:
        """Where the file dialogs open: the folder last opened in one, else beside the data
        shown now (the folder given on the command line, or the bundled examples), else home."""
        stored = QSettings().value(LAST_FOLDER_KEY, "", type=str)
        if stored and os.path.isdir(stored):
            return stored
        data = self._controller.dataset_path
        return str(data.parent) if data is not None and data.parent.is_dir() else str(Path.home())

    def _remember_folder(self, folder: str) -> None:
        QSettings().setValue(LAST_FOLDER_KEY, folder)

    def _ask_folder(self) -> str:
        """The folder the user picks ('' when cancelled)."""
        return QFileDialog.getExistingDirectory(
            self, "Open a labelled image folder", self._start_folder()
        )

    def _ask_files(self) -> list[str]:
        """The image files the user picks (empty when cancelled)."""
        paths, _selected = QFileDialog.getOpenFileNames(
            self, "Add images", self._start_folder(), IMAGE_FILTER
        )
        return paths

    def _ask_label(self, count: int) -> int | None:
        """The label for ``count`` new images, or None when the user cancels."""
        names = self._controller.dataset.class_names
        box = QMessageBox(self)
        box.setWindowTitle("Label of the new images")
        images = "this image" if count == 1 else f"these {count:,} images"
        box.setText(f"Which label should {images} get?")
        buttons = {
            box.addButton(class_text(names, label), QMessageBox.ButtonRole.AcceptRole): label
            for label in (0, 1)
        }
        box.addButton(QMessageBox.StandardButton.Cancel)
        box.exec()
        return buttons.get(box.clickedButton())

    @Slot()
    def open_folder(self) -> None:
        folder = self._ask_folder()
        if folder:
            self._load_folder(folder)

    def _load_folder(self, folder: str) -> bool:
        """Load ``folder`` (asked first after training); whether it went ahead."""
        if not self._may_start_again("Open", f"Open the images of {Path(folder).name}?"):
            return False
        self._message.hide()
        self._remember_folder(folder)
        self._controller.load_folder(folder)
        return True

    def _drop_folder(self, folder: str, others: bool) -> None:
        if self._load_folder(folder) and others:
            self._show_message(
                f"Only {Path(folder).name} is loaded: drop one folder at a time, or only image "
                "files."
            )

    def load_example(self, name: str) -> None:
        """Open the bundled example ``name`` (asked first if that drops trained iterations)."""
        if not self._may_start_again("Open", f"Open the {name} example?"):
            return
        self._message.hide()
        self._controller.load_example(name)

    @Slot()
    def add_images(self) -> None:
        paths = self._ask_files()
        if paths:
            self._add_paths(paths)

    def _add_paths(self, paths: list[str]) -> None:
        label = self._ask_label(len(paths))
        if label is None:
            return
        if not self._may_start_again("Add", f"Add {format_count(len(paths), 'image')}?"):
            return
        self._remember_folder(str(Path(paths[0]).parent))
        self._message.hide()
        self._controller.add_files(list(paths), label)

    def _label_selected(self, label: int) -> None:
        rows = [
            row
            for row in self.selected_rows()
            if int(self._controller.dataset.labels[row]) != label
        ]
        if not rows:
            return
        if not self._may_start_again(
            "Relabel", f"Give {format_count(len(rows), 'image')} label {label}?"
        ):
            return
        self._message.hide()
        self._controller.set_labels(rows, label)

    @Slot()
    def _remove_selected(self) -> None:
        rows = self.selected_rows()
        if not rows:
            return
        if len(rows) >= len(self._controller.dataset):
            self._show_message(
                "Every image is selected: a dataset needs at least one image, so nothing was "
                "removed. Load other data instead, or keep some images."
            )
            return
        if not self._may_start_again("Remove", f"Remove {format_count(len(rows), 'image')}?"):
            return
        self._message.hide()
        self._controller.remove_images(rows)

    def _may_start_again(self, action: str, question: str) -> bool:
        """Whether to go on with a change of the data: at once before any training, else if
        the user agrees to drop what was trained (edits used to drop a long run unasked).
        The run is paused first (the question counts what it drops); data that changed while
        the question was open (a load ending) is not edited: the images picked were others."""
        controller = self._controller
        controller.pause()
        dropped = controller.latest_iteration
        if dropped == 0:
            return True
        dataset = controller.dataset
        if not self.confirm_new_run(action, question, dropped):
            return False
        if controller.dataset is not dataset or controller.is_loading:
            self._show_message("The data changed while you were asked: nothing was changed.")
            return False
        return True

    def _show_message(self, text: str) -> None:
        self._message.setText(text)
        self._message.show()

    def context_menu(self) -> QMenu:
        """The thumbnails' context menu (label and remove actions for the selection)."""
        menu = QMenu(self)
        menu.setObjectName("thumbnailMenu")
        for action in self._label_actions:
            menu.addAction(action)
        menu.addSeparator()
        menu.addAction(self._remove_action)
        return menu

    def _show_context_menu(self, position) -> None:
        index = self.thumbnail_view.indexAt(position)
        if not index.isValid():
            return
        if not self.thumbnail_view.selectionModel().isSelected(index):
            self.thumbnail_view.setCurrentIndex(index)
        menu = self.context_menu()
        menu.exec(self.thumbnail_view.viewport().mapToGlobal(position))
        menu.deleteLater()

    # -- drag and drop ------------------------------------------------------------------------

    @staticmethod
    def _dropped_paths(mime) -> list[str]:
        if not mime.hasUrls():
            return []
        return [url.toLocalFile() for url in mime.urls() if url.isLocalFile()]

    def dragEnterEvent(self, event) -> None:
        if self._dropped_paths(event.mimeData()) and not self._controller.is_loading:
            event.acceptProposedAction()
            self._drop_hint.setGeometry(self.thumbnail_view.geometry())
            self._drop_hint.raise_()
            self._drop_hint.show()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:
        if self._drop_hint.isVisible():
            event.acceptProposedAction()

    def dragLeaveEvent(self, event) -> None:
        self._drop_hint.hide()

    def dropEvent(self, event) -> None:
        self._drop_hint.hide()
        paths = self._dropped_paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        folders = [path for path in paths if os.path.isdir(path)]
        # What follows may ask (the label, or whether to drop the run): a dialog, so not from
        # inside the drop handler, whose drag session the platform may still hold.
        if folders:
            others = len(folders) != len(paths)
            QTimer.singleShot(0, self, lambda: self._drop_folder(folders[0], others))
            return
        QTimer.singleShot(0, self, lambda: self._add_paths(paths))

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._drop_hint.isVisible():
            self._drop_hint.setGeometry(self.thumbnail_view.geometry())
