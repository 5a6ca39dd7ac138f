"""The settings log: which learning rate, momentum and clipping each update of a run used.

A session logs its live settings as ``(first iteration, OptimSettings)`` pairs
(``History.settings_log``): the first pair starts at iteration 1, and every change made while
the run was paused adds the iteration of the next update. Written to JSON, the log lets another
run take exactly the same updates: ``run_with_settings_log`` applies each entry just before the
update of its iteration.

JSON form: a list of objects ``{"iteration": k, "learning_rate": x, "momentum": m,
"clip_norm": c or null}`` in increasing order of ``iteration`` (k >= 1).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from model.config import ConfigError, TrainingConfig
from model.optim import OptimSettings
from model.record import StepRecord
from model.session import TrainingSession

SettingsLog = tuple[tuple[int, OptimSettings], ...]

_FIELDS = ("learning_rate", "momentum", "clip_norm")


def settings_changes(settings: OptimSettings) -> dict:
    """``settings`` as keyword arguments of ``TrainingSession.update_settings``."""
    return {name: getattr(settings, name) for name in _FIELDS}


def settings_log_data(log: Iterable[tuple[int, OptimSettings]]) -> list[dict]:
    """The JSON form of ``log`` (see the module docstring)."""
    return [{"iteration": start, **settings_changes(settings)} for start, settings in log]


def read_settings_log(data) -> SettingsLog:
    """The log in ``data`` (its JSON form), every value checked as a config would check it.

    Raises
    ------
    ConfigError
        Naming the entry and the setting that is refused.
    """
    if not isinstance(data, list):
        raise ConfigError("settings log", f"must be a list of entries, got {type(data).__name__}")
    log = []
    for position, entry in enumerate(data):
        where = f"settings log entry {position + 1}"
        if not isinstance(entry, dict):
            raise ConfigError(where, f"must be an object, got {type(entry).__name__}")
        unknown = set(entry) - {"iteration", *_FIELDS}
        if unknown:
            raise ConfigError(where, f"{sorted(unknown)[0]} is not a live setting")
        if "iteration" not in entry or "learning_rate" not in entry:
            raise ConfigError(where, "needs at least 'iteration' and 'learning_rate'")
        start = entry["iteration"]
        if isinstance(start, bool) or not isinstance(start, int) or start < 1:
            raise ConfigError(where, f"iteration must be a whole number >= 1, got {start!r}")
        if log and start <= log[-1][0]:
            raise ConfigError(where, f"iteration {start} does not follow {log[-1][0]}")
        changes = {name: entry[name] for name in _FIELDS if name in entry}
        try:
            checked = TrainingConfig().with_changes(**changes)
        except ConfigError as exc:
            raise ConfigError(where, str(exc)) from None
        log.append((start, OptimSettings(*(getattr(checked, name) for name in _FIELDS))))
    return tuple(log)


def run_with_settings_log(
    session: TrainingSession,
    iterations: int,
    log: Iterable[tuple[int, OptimSettings]] = (),
    on_step: Callable[[StepRecord], None] | None = None,
) -> None:
    """Take ``iterations`` steps, changing the live settings before the update of each logged
    iteration to the logged ones (entries for iterations already taken are ignored)."""
    due = dict(log)
    for _ in range(iterations):
        settings = due.get(session.iteration + 1)
        if settings is not None and settings != session.settings:
            session.update_settings(**settings_changes(settings))
        record = session.step()
        if on_step is not None:
            on_step(record)
