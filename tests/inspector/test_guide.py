"""Help → User guide: the README read inside the app, from a source tree or an installed
package, with its sections one click away (a newcomer found no guide in the Help menu)."""

import email.message
from pathlib import Path

from PySide6.QtCore import QObject, QUrl, Slot
from PySide6.QtGui import QDesktopServices

from inspector import guide

REPO = Path(__file__).resolve().parents[2]


class UrlCatcher(QObject):
    """Stands in for the browser: Qt hands it the URLs the guide opens."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[QUrl] = []

    @Slot(QUrl)
    def open(self, url: QUrl) -> None:
        self.urls.append(url)


def assert_scrolled_to(dialog: guide.GuideDialog, heading: str) -> None:
    """``heading`` is at the top of the browser, or as near it as the end of the text allows
    (the last section may be shorter than the browser is high)."""
    document = dialog.browser.document()
    block = document.findBlock(dialog._headings[guide.slug(heading)])
    top = document.documentLayout().blockBoundingRect(block).top()
    scroll = dialog.browser.verticalScrollBar()
    assert scroll.value() == min(round(top), scroll.maximum()) > 0
    assert 0 <= top - scroll.value() < dialog.browser.viewport().height() - 50


def test_the_source_tree_readme_is_read_with_its_folder():
    text, base = guide.readme_source()
    assert base == REPO
    assert text == (REPO / "README.md").read_text(encoding="utf-8")


def test_an_installed_package_reads_its_long_description(tmp_path, monkeypatch):
    """No README beside the packages (a wheel install): the package metadata has it. Another
    package's README in site-packages is not taken for it."""
    (tmp_path / "README.md").write_text("# Some other project\n", encoding="utf-8")
    (tmp_path / "inspector").mkdir()
    described = email.message.Message()
    described.set_payload("# Training Inspector\n\n## One minute with it\n\nPress F10.\n")
    monkeypatch.setattr(guide.importlib.metadata, "metadata", lambda name: described)
    assert guide.readme_source(tmp_path) == (described.get_payload(), None)


def test_with_no_readme_anywhere_the_guide_says_so(qtbot, tmp_path, monkeypatch):
    monkeypatch.setattr(guide, "DISTRIBUTION", "no-such-distribution-here")
    assert guide.readme_source(tmp_path) == ("", None)
    dialog = guide.GuideDialog("", None)
    qtbot.addWidget(dialog)
    assert "was not found" in dialog.browser.toPlainText()
    assert dialog.section_names() == []


def test_pictures_whose_files_are_missing_are_left_out(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "here.png").write_bytes(b"")
    markdown = "Before.\n\n![a window](docs/here.png)\n\n![gone](docs/gone.png)\n\nAfter."
    kept = guide._without_missing_pictures(markdown, tmp_path)
    assert "docs/here.png" in kept and "docs/gone.png" not in kept
    assert "Before." in kept and "After." in kept
    assert "![" not in guide._without_missing_pictures(markdown, None)


def test_the_slugs_are_githubs():
    assert guide.slug("The question behind it") == "the-question-behind-it"
    assert guide.slug("What it refuses, and why") == "what-it-refuses-and-why"


def test_the_guide_lists_the_sections_and_scrolls_to_one(qtbot):
    dialog = guide.GuideDialog(*guide.readme_source())
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    names = dialog.section_names()
    headings = [
        line[3:].strip()
        for line in (REPO / "README.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("## ")
    ]
    assert names == ["Training Inspector", *headings]
    assert dialog.browser.verticalScrollBar().value() == 0  # opens at the top

    dialog.sections.setCurrentRow(names.index("Your own images"))
    assert_scrolled_to(dialog, "Your own images")
    assert not dialog.show_section("No such section")


def test_the_readmes_own_links_work_in_the_guide(qtbot):
    """The README's "[below](#the-question-behind-it)" goes to that section; links to files of
    the source tree and to the web open outside the guide."""
    dialog = guide.GuideDialog(*guide.readme_source())
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    dialog.browser.anchorClicked.emit(QUrl("#the-question-behind-it"))
    assert_scrolled_to(dialog, "The question behind it")

    catcher = UrlCatcher()
    for scheme in ("file", "https"):
        QDesktopServices.setUrlHandler(scheme, catcher, "open")
    try:
        dialog.browser.anchorClicked.emit(QUrl("benchmarks/RESULTS.md"))
        dialog.browser.anchorClicked.emit(QUrl("https://example.org/"))
        dialog.browser.anchorClicked.emit(QUrl("no/such/file.md"))
    finally:
        for scheme in ("file", "https"):
            QDesktopServices.unsetUrlHandler(scheme)
    assert [u.toString() for u in catcher.urls] == [
        QUrl.fromLocalFile(str(REPO / "benchmarks" / "RESULTS.md")).toString(),
        "https://example.org/",
    ]


def test_wide_pictures_are_scaled_to_fit(qtbot):
    dialog = guide.GuideDialog(*guide.readme_source())
    qtbot.addWidget(dialog)
    widths = []
    block = dialog.browser.document().begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            form = it.fragment().charFormat()
            if form.isImageFormat():
                widths.append(form.toImageFormat().width())
            it += 1
        block = block.next()
    assert widths and all(0 < w <= guide.IMAGE_WIDTH for w in widths)


def test_help_opens_one_guide(qtbot, window):
    help_menu = next(
        a.menu() for a in window.menuBar().actions() if a.text().replace("&", "") == "Help"
    )
    assert help_menu.actions()[0] is window.actions["guide"]
    window.actions["guide"].trigger()
    dialog = window.show_guide()
    qtbot.waitUntil(dialog.isVisible)
    assert window.show_guide() is dialog
    assert "One minute with it" in dialog.section_names()
    dialog.close()
