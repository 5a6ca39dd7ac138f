"""Starting the desktop application.

On Linux, Qt's xcb platform plugin needs system libraries that minimal machines lack; Qt then
aborts with a cryptic message. ``display_problem`` checks first and says in one line what to
install, or how to run without a display.
"""

from __future__ import annotations

import contextlib
import ctypes.util
import ipaddress
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

from model.config import TrainingConfig
from model.data import DatasetError, is_image_list, load_dataset, load_example, load_image_list
from model.presets import PRESETS, preset_config

#: Debian/Ubuntu package names that do not follow the soname convention.
PACKAGE_NAMES = {
    "libEGL.so.1": "libegl1",
    "libGL.so.1": "libgl1",
    "libOpenGL.so.0": "libopengl0",
    "libX11-xcb.so.1": "libx11-xcb1",
    "libglib-2.0.so.0": "libglib2.0-0",
    "libdbus-1.so.3": "libdbus-1-3",
}
#: Loaded by Qt's xcb plugin at run time (dlopen), so ``ldd`` does not list it.
RUNTIME_LIBRARIES = ("libxcb-cursor.so.0",)


def package_for(soname: str) -> str:
    """The Debian package that ships ``soname`` (libfoo-bar.so.4 -> libfoo-bar4)."""
    if soname in PACKAGE_NAMES:
        return PACKAGE_NAMES[soname]
    stem, _, version = soname.partition(".so.")
    stem = stem.lower()
    return f"{stem}-{version}" if stem[-1].isdigit() else f"{stem}{version}"


def _xcb_plugin_files() -> list[str]:
    import importlib.util

    spec = importlib.util.find_spec("PySide6")
    if spec is None or spec.origin is None:
        return []
    qt = Path(spec.origin).parent / "Qt"
    candidates = [qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6"]
    return [str(p) for p in candidates if p.exists()]


def missing_libraries(run=subprocess.run, find=ctypes.util.find_library) -> list[str]:
    """Shared libraries Qt's xcb plugin needs that the system cannot find."""
    missing = []
    for plugin in _xcb_plugin_files():
        try:
            listing = run(["ldd", plugin], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            break
        for line in listing.splitlines():
            if "not found" in line:
                soname = line.split("=>")[0].strip()
                if soname not in missing:
                    missing.append(soname)
    for soname in RUNTIME_LIBRARIES:
        if find(soname.removeprefix("lib").partition(".so")[0]) is None and soname not in missing:
            missing.append(soname)
    return missing


def _wayland_reachable(environ) -> bool:
    name = environ.get("WAYLAND_DISPLAY")
    if not name:
        return False
    path = name if os.path.isabs(name) else os.path.join(environ.get("XDG_RUNTIME_DIR", ""), name)
    return os.path.exists(path)


def x_display_reachable(display: str, timeout: float = 1.0) -> bool:
    """Whether an X server answers at ``display`` (":1", "unix:1.0", "localhost:10",
    "127.0.0.1:0"): a connection to its socket opens. An address this cannot read, or a host
    name other than localhost (whose lookup could stall the launch), counts as reachable: Qt
    will say."""
    host, _, rest = display.rpartition(":")
    number = rest.partition(".")[0]
    if not number.isdigit():
        return True
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        for address in ("\0" + path, path):  # the abstract socket, then the file
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as unix:
                unix.settimeout(timeout)
                try:
                    unix.connect(address)
                except OSError:
                    continue
                return True
        return False
    if host != "localhost":
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            return True  # a host name: looking it up could take long (left to Qt)
    try:
        socket.create_connection((host.strip("[]"), 6000 + int(number)), timeout=timeout).close()
    except OSError:
        return False
    return True


def display_problem(
    environ=os.environ,
    platform: str = sys.platform,
    missing=missing_libraries,
    reach=x_display_reachable,
):
    """A one-line explanation of why no window can open here, or None if it should work."""
    requested = environ.get("QT_QPA_PLATFORM", "")
    if platform != "linux" or (requested and not requested.startswith("xcb")):
        return None
    if not requested and _wayland_reachable(environ):
        return None
    display = environ.get("DISPLAY")
    if not display:
        return (
            "no display found (DISPLAY is not set): run it on a desktop, under Xvfb "
            "(xvfb-run training-inspector), or train without a window with "
            "'training-inspector --headless --out DIR'"
        )
    libraries = missing()
    if libraries:
        packages = sorted({package_for(soname) for soname in libraries})
        return (
            f"Qt cannot open a window: missing system libraries ({', '.join(libraries)}); "
            f"install them with: sudo apt-get install {' '.join(packages)}"
        )
    if not reach(display):
        # Qt would abort (a core dump) with advice about libraries that are not the cause.
        return (
            f"cannot reach the display {display!r} (nothing answers there): check DISPLAY, "
            "or train without a window with 'training-inspector --headless --out DIR'"
        )
    return None


def _initial_dataset(data_dir: str | None, example: str = "question"):
    if data_dir is None:
        return load_example(example), f"example:{example}"
    if is_image_list(data_dir):
        return load_image_list(data_dir), os.path.abspath(data_dir)
    return load_dataset(data_dir), os.path.abspath(data_dir)


def run_app(
    data_dir: str | None = None,
    preset: str | None = None,
    *,
    config: TrainingConfig | None = None,
    argv=None,
) -> int:
    """Open the main window on ``data_dir`` (default: the preset's example) with ``config``, or
    else ``preset``'s settings (default 'seed', so pressing Step shows the question's failure
    at once)."""
    problem = display_problem()
    if problem is not None:
        print(f"training-inspector: {problem}", file=sys.stderr)
        return 2
    preset_name = preset or "seed"
    if preset_name not in PRESETS:
        print(f"training-inspector: unknown preset {preset_name!r}", file=sys.stderr)
        return 2
    try:
        # Without a folder, the preset's own example (the question's, or Shapes).
        dataset, source = _initial_dataset(data_dir, PRESETS[preset_name].example)
    except (DatasetError, OSError, ValueError) as exc:
        print(f"training-inspector: error: {exc}", file=sys.stderr)
        return 2

    if config is None:
        config = preset_config(preset_name)
    try:  # (settings given on the command line, a report's config on other images)
        config.map_size(dataset.size)
    except ValueError as exc:
        print(f"training-inspector: error: {exc}", file=sys.stderr)
        return 2
    # The training process starts first: it loads NumPy and builds iteration 0 while this
    # process loads Qt, instead of after it.
    from inspector.training_process import TrainerClient

    client = TrainerClient(dataset, config)

    from PySide6.QtCore import QCoreApplication
    from PySide6.QtWidgets import QApplication

    from inspector.controller import SessionController
    from inspector.errors import install_excepthook
    from inspector.main_window import MainWindow

    QCoreApplication.setOrganizationName("TrainingInspector")
    QCoreApplication.setApplicationName("training-inspector")
    app = QApplication.instance() or QApplication(list(argv or sys.argv[:1]))
    app.setApplicationDisplayName("Training Inspector")
    controller = SessionController(dataset, config, source=source, client=client)
    window = MainWindow(controller)
    install_excepthook(lambda: window)
    signals = SignalWatch(app, window)
    window.show()
    try:
        status = app.exec()
    finally:
        signals.uninstall()
    # A signal's status (130 for Ctrl+C, 143 for SIGTERM), as a shell expects of a program
    # that a signal ended.
    return 128 + signals.received[0] if signals.received else status


class SignalWatch:
    """Ctrl+C in the terminal that launched the app (SIGINT) and SIGTERM (a logout, ``kill``)
    close the window as Quit does: the settings are saved and the training process ends.
    Without this, SIGINT did nothing while the window was idle and SIGTERM ended the app
    without any of that.

    Python runs its signal handlers only between its own bytecodes, and Qt's event loop runs
    none while idle: the signal's number is written to a socket (``signal.set_wakeup_fd``)
    that Qt watches (and passed on to a wakeup fd set before). A second signal while closing
    hangs ends the app at once (the default actions are back by then). ``received`` holds the
    signal taken.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, app, window) -> None:
        from PySide6.QtCore import QSocketNotifier

        self.received: list[int] = []
        self._app, self._window = app, window
        self._reader, self._writer = socket.socketpair()
        for end in (self._reader, self._writer):
            end.setblocking(False)
        self._previous_fd = signal.set_wakeup_fd(self._writer.fileno())
        # A signal ignored from the start stays ignored: a shell without job control starts a
        # program in the background that way, so that Ctrl+C in its terminal leaves it alone.
        self._previous = {
            number: signal.signal(number, self._note)
            for number in self.SIGNALS
            if signal.getsignal(number) != signal.SIG_IGN
        }
        self._notifier = QSocketNotifier(self._reader.fileno(), QSocketNotifier.Type.Read)
        self._notifier.activated.connect(self._woken)

    def _note(self, _number: int, _frame) -> None:
        # (runs once Python runs again: the byte on the socket has woken Qt by then) Either
        # signal next ends the app at once, should closing hang.
        for number in self._previous:
            signal.signal(number, signal.SIG_DFL)

    def _woken(self, *_args) -> None:
        try:
            numbers = self._reader.recv(64)
        except OSError:
            return
        if self._previous_fd >= 0:
            # (whoever had the wakeup fd before still hears of every signal)
            with contextlib.suppress(OSError):
                os.write(self._previous_fd, numbers)
        taken = [n for n in numbers if n in self.SIGNALS]
        if not taken or self.received:
            return
        self.received.extend(taken[:1])
        self._window.close()
        # A file dialog or message box of its own event loop would keep the app running after
        # its window closed: every event loop ends.
        self._app.quit()

    def uninstall(self) -> None:
        """Put back the handlers and wakeup socket found at the start."""
        self._notifier.setEnabled(False)
        signal.set_wakeup_fd(self._previous_fd)
        for number, previous in self._previous.items():
            signal.signal(number, signal.SIG_DFL if previous is None else previous)
        self._reader.close()
        self._writer.close()
