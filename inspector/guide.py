"""Help → User guide: the README, read inside the app, with its sections listed beside it.

The README is the one guide the project keeps. A source tree has it beside the packages; an
installed package carries it as its long description (``readme`` in pyproject.toml), so the
guide is there after ``pip install .`` too, without a second copy to keep in step.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

from PySide6.QtCore import Qt, QUrl, Slot
from PySide6.QtGui import QDesktopServices, QImage, QTextCursor
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QListWidget,
    QSplitter,
    QTextBrowser,
    QVBoxLayout,
    QWidget,
)

DISTRIBUTION = "training-inspector"
#: Pictures wider than this are scaled down to it (the README's are screenshots of the window).
IMAGE_WIDTH = 700
_IMAGE = re.compile(r"!\[[^\]]*\]\(([^)]*)\)")


def readme_source(source_tree: Path | None = None) -> tuple[str, Path | None]:
    """The README's markdown and the folder its relative links start from: the source tree's
    file if there is one, else the installed package's long description (with no folder;
    ("", None) if neither is found)."""
    tree = source_tree if source_tree is not None else Path(__file__).resolve().parent.parent
    readme = tree / "README.md"
    # Only this project's source tree: installed, the folder above the package is
    # site-packages, where another package may have left a README.md (a review).
    if readme.is_file() and (tree / "pyproject.toml").is_file() and (tree / "inspector").is_dir():
        try:
            return readme.read_text(encoding="utf-8"), tree
        except (OSError, UnicodeDecodeError):
            pass
    try:
        return importlib.metadata.metadata(DISTRIBUTION).get_payload() or "", None
    except importlib.metadata.PackageNotFoundError:
        return "", None


def _without_missing_pictures(markdown: str, base: Path | None) -> str:
    """``markdown`` less the pictures whose files are not there (an installed package carries
    the README's text but not its pictures)."""

    def keep(match: re.Match) -> str:
        target = match.group(1).strip()
        return match.group(0) if base is not None and (base / target).is_file() else ""

    return _IMAGE.sub(keep, markdown)


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading ("The question behind it" → "the-question-behind-it"),
    which the README's own links use."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


class GuideDialog(QDialog):
    """The README as a document, its sections in a list on the left; a click on a section, or
    on a link to one, scrolls there. Links out of the guide open in the browser."""

    def __init__(
        self, markdown: str, base: Path | None = None, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._base = base
        self.setObjectName("guideDialog")
        self.setWindowTitle("Training Inspector: user guide")
        self.resize(960, 680)

        self.sections = QListWidget()
        self.sections.setObjectName("guideSections")
        self.browser = QTextBrowser()
        self.browser.setObjectName("guideText")
        self.browser.setOpenLinks(False)
        self.browser.anchorClicked.connect(self._follow)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(self.sections)
        splitter.addWidget(self.browser)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([210, 750])
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.close)
        layout = QVBoxLayout(self)
        layout.addWidget(splitter, 1)
        layout.addWidget(buttons)

        if markdown.strip():
            if base is not None:
                self.browser.setSearchPaths([str(base)])
            self.browser.setMarkdown(_without_missing_pictures(markdown, base))
            self._fit_pictures()
        else:
            self.browser.setPlainText(
                "The user guide (README.md) was not found: this copy of Training Inspector was "
                "neither run from its source folder nor installed as a package."
            )
        #: slug → position in the document of each heading of level 1–3.
        self._headings: dict[str, int] = {}
        block = self.browser.document().begin()
        while block.isValid():
            level = block.blockFormat().headingLevel()
            if 1 <= level <= 3:
                self._headings.setdefault(slug(block.text()), block.position())
                if level <= 2:  # The title first: the list starts (and focus puts it) at the top.
                    self.sections.addItem(block.text())
            block = block.next()
        self.sections.currentTextChanged.connect(self.show_section)

    def _fit_pictures(self) -> None:
        """Scale pictures wider than IMAGE_WIDTH down to it, keeping their proportions."""
        document = self.browser.document()
        block = document.begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                form = fragment.charFormat()
                if form.isImageFormat():
                    picture = form.toImageFormat()
                    image = QImage(str(self._base / picture.name())) if self._base else QImage()
                    if not image.isNull() and image.width() > IMAGE_WIDTH:
                        picture.setWidth(IMAGE_WIDTH)
                        picture.setHeight(image.height() * IMAGE_WIDTH / image.width())
                        cursor = QTextCursor(document)
                        cursor.setPosition(fragment.position())
                        cursor.setPosition(
                            fragment.position() + fragment.length(),
                            QTextCursor.MoveMode.KeepAnchor,
                        )
                        cursor.setCharFormat(picture)
                it += 1
            block = block.next()

    def section_names(self) -> list[str]:
        return [self.sections.item(i).text() for i in range(self.sections.count())]

    @Slot(str)
    def show_section(self, heading: str) -> bool:
        """Scroll so that ``heading`` (its text or its slug) is at the top; False if no such
        section."""
        position = self._headings.get(slug(heading))
        if position is None:
            return False
        document = self.browser.document()
        layout = document.documentLayout()
        layout.documentSize()  # laid out to the end, so that the scroll range is whole
        top = layout.blockBoundingRect(document.findBlock(position)).top()
        self.browser.verticalScrollBar().setValue(round(top))
        return True

    @Slot(QUrl)
    def _follow(self, url: QUrl) -> None:
        if not url.scheme() and not url.path() and url.fragment():
            self.show_section(url.fragment())
        elif not url.scheme() and self._base is not None and (self._base / url.path()).is_file():
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self._base / url.path())))
        elif url.scheme() in ("http", "https", "mailto"):
            QDesktopServices.openUrl(url)
