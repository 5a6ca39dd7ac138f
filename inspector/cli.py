"""The ``training-inspector`` command: the desktop app, or with ``--headless`` a run that writes
metrics, snapshots and findings to a folder, or with ``--headless --sweep`` an outcome map of a
grid of learning rates and initialisation scales.

Nothing here imports Qt. The window's module is imported only when the window is asked for, so
a headless run works without a display and without PySide6.

Every failure ends in one line on stderr and a non-zero exit status (2 for a refused argument
or setting, 1 for data or files that cannot be used, 130 when interrupted), never a traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from model.config import (
    ACTIVATIONS,
    DTYPES,
    PADDINGS,
    PIXEL_SCALINGS,
    UPDATE_MODES,
    ConfigError,
    TrainingConfig,
)
from model.data import (
    EXAMPLES,
    MAX_SIDE,
    Dataset,
    DatasetError,
    is_image_list,
    load_dataset,
    load_image_list,
)
from model.data import example_path as bundled_example
from model.files import SaveError, readable
from model.formatting import format_count, format_number
from model.init import INIT_KINDS, SCALE_FAMILIES, InitSpec
from model.presets import PRESETS, preset_config
from model.weights_file import COPY_NAME, StartingWeights, WeightsFileError, read_weights

if TYPE_CHECKING:
    from model.settings_log import SettingsLog
    from model.sweep import SweepSpec

PROG = "training-inspector"
HEADLESS_PRESET = "recommended"
WINDOW_PRESET = "seed"
DEFAULT_ITERATIONS = 50
EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

INIT_SYNTAX = "uniform:LOW,HIGH | normal:MEAN,STD | he_normal | xavier_uniform | constant:VALUE"
RANGE_SYNTAX = "START:STOP:COUNT (COUNT values from START to STOP, log-spaced) | V1,V2,..."
MAX_AXIS_VALUES = 100
SWEEP_LR_DEFAULT = "1e-4:10:11"
SWEEP_SCALE_DEFAULT = "0.001:1:7"
USAGE = f"""{PROG} [DIR] [--preset {{{",".join(PRESETS)}}} | --config FILE] [settings]
       {PROG} --headless [--preset P | --config FILE] [--data DIR | --example NAME]
                          [--iterations N] [settings] [--settings-log FILE]
                          [--snapshot-every N] [--overwrite] --out DIR
       {PROG} --headless --sweep [--preset P | --config FILE]
                          [--data DIR | --example NAME] [--sweep-lr RANGE]
                          [--sweep-scale RANGE] [--sweep-init FAMILY] [--sweep-pixels LIST]
                          [--iterations N] [settings] [--workers W] [--overwrite] --out DIR"""
EPILOG = f"""\
INIT SPEC: {INIT_SYNTAX}
RANGE:     {RANGE_SYNTAX}
           e.g. 1e-4:10:11 is 1e-4, 3.2e-4, 1e-3, ..., 10 (half a decade apart)

The headless run writes metrics.csv, config.json (with the command that repeats the run),
findings.txt, findings.json and filter snapshots (filters-iterNNNNNN.png/.npy/.json) into
--out DIR, and refuses to replace earlier outputs unless --overwrite is given.

--config FILE starts from a saved config (the config.json of a run or of a report) instead of
a preset; other options override it. --settings-log FILE changes the learning rate, momentum
and clipping before the updates at which a report's run changed them, so that the report's
REPRODUCE command repeats its metrics.csv exactly.

--weights FILE starts from the weights in an .npz (conv.weight (F, 3, K, K), optionally
conv.bias, classifier.weight and classifier.bias: a snapshot's .npz is one) or an .npy of
filter weights. The number and size of filters come from it; what it does not give is drawn
from the initialisers.

A sweep (--sweep) trains one fresh run per cell of a grid of learning rates (--sweep-lr) x
initial weight scales s (--sweep-scale) of both layers, N(0, s) or U(0, s) (--sweep-init;
default: the family of the starting config's conv init), for each pixel scaling of
--sweep-pixels (default: the config's), --iterations N each (default {DEFAULT_ITERATIONS}), on
every core (--workers). Each cell ends 'learned' (accuracy 100% on up to 10 images, 95% on
more), 'stuck', 'dead filter' (every filter dead) or 'diverged' (NaN or inf). It writes
sweep.csv (one row per cell), sweep.png (the outcome map, the starting setting ringed) and
sweep.json.

examples:
  {PROG} --headless --preset seed --iterations 3 --out runs/question
  {PROG} --headless --lr 0.01 --init normal:0,0.02 --filters 4 --out runs/four-filters
  {PROG} --headless --sweep --preset seed --sweep-lr 1e-9:10:11 --sweep-pixels raw,unit \\
      --out runs/question-map
  cd report && {PROG} --headless --data images.csv --config config.json \\
      --settings-log settings_log.json --size 32x32 --iterations 12 --out reproduced"""

#: Options that set one ``TrainingConfig`` field: (flag, field, choices, metavar, help).
#: Numbers go to the config as typed, so its validation words the error ("learning_rate: ...").
SETTING_OPTIONS = (
    ("--pixels", "pixel_scaling", PIXEL_SCALINGS, None, "pixel scaling"),
    ("--update", "update_mode", UPDATE_MODES, None, "one SGD update per image, or full batch"),
    ("--lr", "learning_rate", None, "X", "learning rate"),
    ("--momentum", "momentum", None, "M", "SGD momentum in [0, 1)"),
    ("--clip", "clip_norm", None, "C", "clip the gradient norm at C ('off': no clipping)"),
    ("--filters", "num_filters", None, "F", "number of conv filters"),
    ("--kernel", "kernel_size", None, "K", "conv kernel size (odd with 'same' padding)"),
    ("--padding", "padding", PADDINGS, None, "conv padding"),
    ("--activation", "activation", ACTIVATIONS, None, "activation after the conv layer"),
    ("--slope", "negative_slope", None, "S", "negative slope of leaky_relu"),
    ("--dtype", "dtype", DTYPES, None, "float type of every array"),
    ("--seed", "seed", None, "S", "seed of the initialisation and the shuffling"),
)

#: Settings options, which the window takes too (it opens with them): destination -> flag.
SETTINGS_FLAGS = {
    "weights": "--weights",
    "init": "--init",
    "conv_init": "--conv-init",
    "classifier_init": "--classifier-init",
    "shuffle": "--shuffle",
    "config": "--config",
    **{field: flag for flag, field, _, _, _ in SETTING_OPTIONS},
}
#: Options that mean something only with --headless: destination name -> flag.
HEADLESS_ONLY = {
    "data": "--data",
    "example": "--example",
    "size": "--size",
    "iterations": "--iterations",
    "snapshot_every": "--snapshot-every",
    "threads": "--threads",
    "out": "--out",
    "overwrite": "--overwrite",
    "settings_log": "--settings-log",
    "sweep": "--sweep",
    "sweep_lr": "--sweep-lr",
    "sweep_scale": "--sweep-scale",
    "sweep_init": "--sweep-init",
    "sweep_pixels": "--sweep-pixels",
    "workers": "--workers",
}
#: Options that mean something only with --sweep.
SWEEP_ONLY = ("sweep_lr", "sweep_scale", "sweep_init", "sweep_pixels", "workers")
#: Options that mean something only without --sweep.
RUN_ONLY = ("snapshot_every", "settings_log", "threads")


class UsageError(Exception):
    """An argument that is refused."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a refused argument raises ``UsageError`` instead of printing the usage and
    exiting, so that ``main`` reports it in one line like every other failure."""

    def error(self, message: str):
        raise UsageError(f"{message} (see --help)")


# ---------------------------------------------------------------------------------------------
# Argument types
# ---------------------------------------------------------------------------------------------


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {number}")
    return number


def parse_size(text: str) -> tuple[int, int]:
    """'HxW' -> (H, W), both in 1..``MAX_SIDE`` (refused as a usage error, status 2, like
    every other bad value, rather than by the loader as a failed load, status 1)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if match is None:
        raise argparse.ArgumentTypeError(f"must be HEIGHTxWIDTH such as 32x32, got {text!r}")
    height, width = int(match[1]), int(match[2])
    if height < 1 or width < 1:
        raise argparse.ArgumentTypeError(f"height and width must be at least 1, got {text!r}")
    if height > MAX_SIDE or width > MAX_SIDE:
        raise argparse.ArgumentTypeError(
            f"height and width must be at most {MAX_SIDE}, got {text!r}"
        )
    return height, width


def parse_init_spec(text: str) -> InitSpec:
    """An initialiser from 'kind' or 'kind:number,...' (see ``INIT_SYNTAX``)."""
    kind, _, numbers = text.partition(":")
    kind = kind.strip()
    if kind not in INIT_KINDS:
        raise argparse.ArgumentTypeError(f"unknown initialiser {text!r}; use {INIT_SYNTAX}")
    names = list(INIT_KINDS[kind])
    values = [value.strip() for value in numbers.split(",")] if numbers.strip() else []
    if len(values) != len(names):
        wanted = (
            f"{format_count(len(names), 'number')}: {', '.join(names)}" if names else "no numbers"
        )
        raise argparse.ArgumentTypeError(f"{kind} takes {wanted}, got {text!r}")
    try:
        params = {name: float(value) for name, value in zip(names, values, strict=True)}
        return InitSpec(kind, params)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def parse_axis(text: str) -> tuple[float, ...]:
    """Values of a sweep axis from 'START:STOP:COUNT' (log-spaced) or 'V1,V2,...'."""
    parts = text.split(":")
    try:
        if len(parts) == 3:
            start, stop, count = float(parts[0]), float(parts[1]), int(parts[2])
        elif len(parts) == 1:
            values = tuple(float(value) for value in text.split(","))
        else:
            raise ValueError
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {RANGE_SYNTAX}") from None
    if len(parts) == 3:
        if not 1 <= count <= MAX_AXIS_VALUES:
            raise argparse.ArgumentTypeError(
                f"{text!r}: COUNT must be between 1 and {MAX_AXIS_VALUES}, got {count}"
            )
        try:
            from model.sweep import log_spaced

            values = log_spaced(start, stop, count)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None
    if len(values) > MAX_AXIS_VALUES:
        raise argparse.ArgumentTypeError(f"{text!r}: at most {MAX_AXIS_VALUES} values")
    if not all(math.isfinite(value) and value > 0 for value in values):
        raise argparse.ArgumentTypeError(f"{text!r}: every value must be a positive number")
    return values


def parse_pixel_list(text: str) -> tuple[str, ...]:
    """Pixel scalings from 'raw,unit,...'."""
    names = tuple(name.strip() for name in text.split(","))
    unknown = [name for name in names if name not in PIXEL_SCALINGS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown pixel scaling {unknown[0]!r}; use a comma list of {', '.join(PIXEL_SCALINGS)}"
        )
    return names


def format_init_spec(spec: InitSpec) -> str:
    """The ``parse_init_spec`` form of ``spec``, exact (floats written with repr)."""
    if not spec.params:
        return spec.kind
    return f"{spec.kind}:{','.join(repr(value) for value in spec.params.values())}"


# ---------------------------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        usage=USAGE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Watch a small convolutional network (conv -> activation -> logistic regression)\n"
            "learn, or fail to learn, one SGD update at a time. Without --headless the desktop\n"
            "app opens; with --headless the run is written to a folder."
        ),
        epilog=EPILOG,
    )
    parser.add_argument(
        "data_dir", nargs="?", metavar="DIR", help="dataset folder, or a .csv image list"
    )
    parser.add_argument(
        "--preset",
        choices=list(PRESETS),
        help=f"starting settings (the window's default: seed; headless: {HEADLESS_PRESET})",
    )
    parser.add_argument("--headless", action="store_true", help="train without a window")

    run = parser.add_argument_group("headless run")
    source = run.add_mutually_exclusive_group()
    source.add_argument(
        "--data",
        metavar="DIR|LIST",
        help="dataset folder, or a .csv list path,label,class_name in run order (same as DIR)",
    )
    source.add_argument(
        "--example", choices=EXAMPLES, help="bundled example (default: the preset's, question)"
    )
    run.add_argument("--size", type=parse_size, metavar="HxW", help="resize images to HxW")
    run.add_argument(
        "--iterations", type=positive_int, metavar="N", help=f"SGD updates ({DEFAULT_ITERATIONS})"
    )
    run.add_argument(
        "--snapshot-every",
        type=positive_int,
        metavar="N",
        help="also snapshot the filters every N iterations (always: first, last, deaths)",
    )
    run.add_argument(
        "--settings-log",
        metavar="FILE",
        help="change learning rate / momentum / clipping at the iterations logged in FILE "
        "(a report's settings_log.json)",
    )
    run.add_argument(
        "--threads",
        type=positive_int,
        metavar="N",
        help="share each batch between N threads (maps of 262,144+ values an image) or "
        "processes (smaller maps, 131,072+ values a batch) (default 1); the numbers then "
        "differ from one thread's by float rounding only",
    )
    run.add_argument("--out", metavar="DIR", help="output folder (created if missing)")
    run.add_argument("--overwrite", action="store_true", help="replace outputs of a run in DIR")

    sweep = parser.add_argument_group("outcome map (with --headless --sweep)")
    sweep.add_argument(
        "--sweep", action="store_true", help="train a grid of settings and map the outcomes"
    )
    sweep.add_argument(
        "--sweep-lr",
        type=parse_axis,
        metavar="RANGE",
        help=f"learning rates, the map's columns (default {SWEEP_LR_DEFAULT})",
    )
    sweep.add_argument(
        "--sweep-scale",
        type=parse_axis,
        metavar="RANGE",
        help=f"initial weight scales s, the map's rows (default {SWEEP_SCALE_DEFAULT})",
    )
    sweep.add_argument(
        "--sweep-init",
        choices=SCALE_FAMILIES,
        help="both layers N(0, s) or U(0, s) (default: the config's conv init family)",
    )
    sweep.add_argument(
        "--sweep-pixels",
        type=parse_pixel_list,
        metavar="LIST",
        help="pixel scalings, one map each, e.g. raw,unit (default: the config's)",
    )
    sweep.add_argument(
        "--workers", type=positive_int, metavar="W", help="processes (default: every core)"
    )

    settings = parser.add_argument_group("settings (override the preset or --config)")
    settings.add_argument(
        "--config",
        metavar="FILE",
        help="start from this config JSON instead of a preset (a run's or report's config.json)",
    )
    for flag, help_text in (
        ("--init", "initialiser of both layers' weights"),
        ("--conv-init", "initialiser of the conv weights (overrides --init)"),
        ("--classifier-init", "initialiser of the classifier weights (overrides --init)"),
    ):
        settings.add_argument(flag, type=parse_init_spec, metavar="SPEC", help=help_text)
    settings.add_argument(
        "--weights",
        metavar="FILE",
        help="start from the weights in this .npz or .npy (a snapshot's, or your own code's)",
    )
    settings.add_argument(
        "--shuffle", action=argparse.BooleanOptionalAction, help="shuffle images every epoch"
    )
    for flag, field, choices, metavar, help_text in SETTING_OPTIONS:
        settings.add_argument(flag, dest=field, choices=choices, metavar=metavar, help=help_text)
    return parser


# ---------------------------------------------------------------------------------------------
# From arguments to a run
# ---------------------------------------------------------------------------------------------


def _read_json(path: str, flag: str):
    try:
        with open(path, encoding="utf-8") as handle:
            return json.load(handle)
    except OSError as exc:
        raise CommandFailed(f"{flag}: {exc.strerror or exc}: {path}") from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise CommandFailed(f"{flag}: {path} is not valid JSON: {exc}") from exc


def load_config_file(path: str, *, weights: bool = True) -> TrainingConfig:
    """The config in a JSON file: ``TrainingConfig.to_dict`` output, or an object holding it
    under "config" (the config.json of a headless run or of a report); without the weights
    file it names when ``weights`` is False (--weights gives another)."""
    data = _read_json(path, "--config")
    if isinstance(data, dict) and isinstance(data.get("config"), dict):
        data = data["config"]
    if not weights and isinstance(data, dict):
        data = {**data, "initial_weights": None}
    # A report's or a run's config names its copy of the weights relative to itself.
    return TrainingConfig.from_dict(data, base=str(Path(path).parent))


def load_settings_log(path: str) -> SettingsLog:
    """The settings log in a JSON file (``model.settings_log``)."""
    from model.settings_log import read_settings_log

    return read_settings_log(_read_json(path, "--settings-log"))


def config_from_args(args: argparse.Namespace, preset: str | None) -> TrainingConfig:
    """The config of ``--config`` (when given) or of the preset, with the options given
    (raises ``ConfigError``)."""
    changes = {}
    for _, field, _, _, _ in SETTING_OPTIONS:
        value = getattr(args, field)
        if value is not None:
            no_clipping = field == "clip_norm" and value.strip().lower() == "off"
            changes[field] = None if no_clipping else value
    if args.shuffle is not None:
        changes["shuffle"] = args.shuffle
    for field in ("conv_init", "classifier_init"):
        spec = getattr(args, field) or args.init
        if spec is not None:
            changes[field] = spec
    weights = _read_weights_option(getattr(args, "weights", None))
    sizes = {}
    if weights is not None:
        sizes = {f: changes.pop(f) for f in ("num_filters", "kernel_size") if f in changes}
    if getattr(args, "config", None) is not None:
        # (--weights replaces the file the config names, which may be gone or changed)
        config = load_config_file(args.config, weights=weights is None).with_changes(**changes)
    else:
        config = preset_config(preset or HEADLESS_PRESET, **changes)
    if weights is not None:
        config = config.with_weights(weights)
    # --filters and --kernel that differ from the weights file's are refused in words.
    return config.with_changes(**sizes)


def _read_weights_option(path: str | None) -> StartingWeights | None:
    if path is None:
        return None
    try:
        return read_weights(path)
    except WeightsFileError as exc:
        raise ConfigError("--weights", str(exc)) from None


def config_arguments(config: TrainingConfig, weights_path: Path | None = None) -> list[str]:
    """Options that set every field of ``config`` the command line can set, exactly; a weights
    file is named by ``weights_path`` when given (a run's copy of it)."""
    arguments = [
        "--conv-init",
        format_init_spec(config.conv_init),
        "--classifier-init",
        format_init_spec(config.classifier_init),
        "--shuffle" if config.shuffle else "--no-shuffle",
    ]
    for flag, field, _, _, _ in SETTING_OPTIONS:
        value = getattr(config, field)
        # str of a float is its shortest exact form (repr), so the value reads back unchanged.
        arguments += [flag, "off" if value is None else str(value)]
    if config.initial_weights is not None:
        arguments += ["--weights", str(weights_path or config.initial_weights.path)]
    return arguments


def reproduce_command(
    config: TrainingConfig,
    preset: str | None,
    source: Mapping[str, str],
    dataset: Dataset,
    iterations: int,
    snapshot_every: int | None,
    out_dir: Path,
    settings_log: str | None = None,
    threads: int = 1,
) -> list[str]:
    """The command line that repeats a run exactly, every setting spelled out (so it needs
    no preset, and names one only when the run started from one)."""
    command = [PROG, "--headless"]
    if preset is not None:
        command += ["--preset", preset]
    if "example" in source:
        command += ["--example", source["example"]]
    else:
        command += ["--data", source.get("folder") or source["list"]]
    command += ["--size", "{}x{}".format(*dataset.size), "--iterations", str(iterations)]
    # The weights from the run's own copy (the file it read may change or move).
    command += config_arguments(config, out_dir.resolve() / COPY_NAME)
    if settings_log is not None:
        command += ["--settings-log", str(Path(settings_log).resolve())]
    if snapshot_every is not None:
        command += ["--snapshot-every", str(snapshot_every)]
    if threads != 1:  # the numbers depend on it, by rounding
        command += ["--threads", str(threads)]
    return command + ["--out", str(out_dir.resolve())]


class CommandFailed(Exception):
    """A failure that is not a refused argument: data that cannot be loaded, an app that
    cannot start."""


def load_data(args: argparse.Namespace, preset: str | None) -> tuple[Dataset, dict[str, str]]:
    """The dataset the arguments name (a folder or an image list, else an example, else the
    preset's example) and its source: {'folder': absolute path}, {'list': absolute path} or
    {'example': name}."""
    folder = args.data or args.data_dir
    try:
        if folder is not None and is_image_list(folder):
            source = {"list": str(Path(folder).resolve())}
            return load_image_list(folder, args.size), source
        if folder is not None:
            source = {"folder": str(Path(folder).resolve())}
            return load_dataset(folder, args.size), source
        name = args.example or PRESETS[preset or HEADLESS_PRESET].example
        return load_dataset(bundled_example(name), args.size), {"example": name}
    except (DatasetError, ValueError, OSError) as exc:
        raise CommandFailed(f"dataset: {exc}") from exc


def _refuse_misplaced(args: argparse.Namespace) -> None:
    """Refuse options that belong to the other kind of headless command."""
    wrong = RUN_ONLY if args.sweep else SWEEP_ONLY
    given = [HEADLESS_ONLY[dest] for dest in wrong if getattr(args, dest) is not None]
    if given:
        where = "a training run, not with --sweep" if args.sweep else "--sweep"
        raise UsageError(f"{given[0]} applies only to {where} (see --help)")


def run_from_args(args: argparse.Namespace) -> int:
    """The headless run or sweep: check everything cheap first, then load, train and write."""
    # Imported here, not at the top: the desktop app starts through this module too and has
    # no use for them (start-up time).
    from model.headless import HeadlessRun, check_output_folder, run_headless, summary

    if args.out is None:
        raise UsageError("--headless needs --out DIR (see --help)")
    if args.data is not None and args.data_dir is not None:
        raise UsageError("give the dataset folder either as DIR or as --data, not both")
    if args.example is not None and args.data_dir is not None:
        raise UsageError("give either a dataset folder DIR or --example, not both")
    if args.preset is not None and args.config is not None:
        raise UsageError("give either --preset or --config, not both")
    _refuse_misplaced(args)
    if args.sweep and args.weights is not None:
        raise UsageError(
            "--weights applies to a training run, not with --sweep (every cell "
            "draws its own weights)"
        )
    preset = args.preset or (None if args.config is not None else HEADLESS_PRESET)
    config = config_from_args(args, preset)
    out_dir = Path(args.out)
    if args.sweep:
        return sweep_from_args(args, preset, config, out_dir)
    settings_log = () if args.settings_log is None else load_settings_log(args.settings_log)
    # run_headless checks this too; checking before the load fails fast on a large dataset.
    check_output_folder(out_dir, args.overwrite)
    dataset, source = load_data(args, preset)
    try:
        config.map_size(dataset.size)
    except ValueError as exc:  # a usage error, not a failure of the run
        raise UsageError(str(exc)) from None
    iterations = args.iterations or DEFAULT_ITERATIONS
    threads = args.threads or 1
    command = reproduce_command(
        config,
        preset,
        source,
        dataset,
        iterations,
        args.snapshot_every,
        out_dir,
        args.settings_log,
        threads,
    )
    run = HeadlessRun(
        dataset=dataset,
        config=config,
        iterations=iterations,
        out_dir=out_dir,
        preset=preset,
        source=source,
        snapshot_every=args.snapshot_every,
        overwrite=args.overwrite,
        command=tuple(command),
        settings_log=settings_log,
        threads=threads,
    )
    progress = _RunProgress(iterations) if sys.stderr.isatty() else None
    try:
        result = run_headless(run, progress)
    finally:
        if progress is not None:
            progress.end()
    # (readable: a terminal that is strict UTF-8 cannot print a name with bytes that are not)
    print(readable(summary(run, result)))
    if result.interrupted:
        print(
            f"Interrupted at iteration {result.final.iteration} (Ctrl+C): the files hold "
            f"iterations 0-{result.final.iteration}, and config.json's command repeats them.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    return 0


def sweep_command(
    spec: SweepSpec,
    preset: str | None,
    source: Mapping[str, str],
    dataset: Dataset,
    out_dir: Path,
) -> list[str]:
    """The command line that repeats a sweep exactly, every axis value spelled out."""
    command = reproduce_command(spec.base, preset, source, dataset, spec.iterations, None, out_dir)
    command[1:2] = ["--headless", "--sweep"]
    command[-2:-2] = [
        "--sweep-lr",
        ",".join(map(repr, spec.learning_rates)),
        "--sweep-scale",
        ",".join(map(repr, spec.init_scales)),
        "--sweep-init",
        spec.init_family,
        "--sweep-pixels",
        ",".join(spec.pixel_scalings),
    ]
    return command


class _RunProgress:
    """On a terminal, a headless run's progress on one line of stderr, a few times a second:
    where it is, how fast it goes, how long is left and the loss (a run of a million
    iterations used to say nothing until it ended). Cut to the terminal's width: a line
    that wraps leaves its first part behind at every rewrite."""

    INTERVAL = 0.25

    def __init__(self, total: int) -> None:
        self._total = total
        self._start = time.monotonic()
        self._shown = -math.inf
        self._written = False

    def __call__(self, record) -> None:
        now = time.monotonic()
        if now - self._shown < self.INTERVAL and record.iteration < self._total:
            return
        self._shown = now
        done, total = record.iteration, self._total
        elapsed = now - self._start
        parts = [f"iteration {done:,} of {total:,} ({done / max(total, 1):.0%})"]
        if done and elapsed > 0:
            rate = done / elapsed
            parts.append(f"{rate:,.0f} it/s" if rate >= 10 else f"{rate:.2g} it/s")
            if done < total:
                parts.append(f"{_duration((total - done) / rate)} left")
        parts.append(f"loss {format_number(record.loss)}")
        width = shutil.get_terminal_size().columns - 1
        line = " · ".join(parts)[:width]
        print("\r" + line + "\033[K", end="", file=sys.stderr, flush=True)
        self._written = True

    def end(self) -> None:
        """Ends the progress line (the summary and any message then start on their own)."""
        if self._written:
            print(file=sys.stderr, flush=True)


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:,.0f} days"


def _progress_on_terminal(done: int, total: int) -> None:
    print(f"\r{done}/{total} cells", end="" if done < total else "\n", file=sys.stderr)


def sweep_from_args(
    args: argparse.Namespace, preset: str | None, config: TrainingConfig, out_dir: Path
) -> int:
    """The headless sweep: grid from the arguments, cells on every core, then the files."""
    from model.headless import check_output_folder, sweep_summary, write_sweep
    from model.sweep import SweepSpec, default_family, run_sweep

    try:
        spec = SweepSpec(
            base=config,
            learning_rates=args.sweep_lr or parse_axis(SWEEP_LR_DEFAULT),
            init_scales=args.sweep_scale or parse_axis(SWEEP_SCALE_DEFAULT),
            init_family=args.sweep_init or default_family(config),
            pixel_scalings=args.sweep_pixels or (),
            iterations=args.iterations or DEFAULT_ITERATIONS,
        )
    except ConfigError:
        raise
    except ValueError as exc:
        raise UsageError(f"sweep: {exc}") from None
    check_output_folder(out_dir, args.overwrite, sweep=True)
    dataset, source = load_data(args, preset)
    # A list is named after its folder (a report's, say), not after 'images.csv'.
    name = source.get("example") or Path(source.get("folder") or Path(source["list"]).parent).name
    progress = _progress_on_terminal if sys.stderr.isatty() else None
    result = run_sweep(spec, dataset, workers=args.workers, progress=progress, dataset_name=name)
    marker = spec.marker(config)
    several = len(spec.pixel_scalings) > 1
    write_sweep(
        result,
        out_dir,
        source=source,
        marker=marker,
        marker_pixel_scaling=config.pixel_scaling if marker and several else None,
        command=sweep_command(spec, preset, source, dataset, out_dir),
        overwrite=args.overwrite,
    )
    print(readable(sweep_summary(result, out_dir)))
    return 0


def open_app(args: argparse.Namespace) -> int:
    """The desktop app (Qt is imported here and only here)."""
    for dest, flag in HEADLESS_ONLY.items():
        if getattr(args, dest) not in (None, False):
            raise UsageError(f"{flag} applies only with --headless (see --help)")
    # Settings (a report's config.json, --lr, --seed, ...) open the window with them, on top
    # of the preset's (the window's default preset, seed, unless --config replaces it).
    if args.preset is not None and args.config is not None:
        raise UsageError("give either --preset or --config, not both")
    config = None
    if any(getattr(args, dest) is not None for dest in SETTINGS_FLAGS):
        config = config_from_args(args, args.preset or WINDOW_PRESET)
    try:
        from inspector.app import run_app
    except ImportError as exc:
        raise CommandFailed(f"the desktop app cannot start: {exc}") from exc
    if config is None:
        return run_app(args.data_dir, args.preset)
    return run_app(args.data_dir, args.preset, config=config)


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------


def _fail(message: object, status: int) -> int:
    print(readable(f"{PROG}: error: {' '.join(str(message).split())}"), file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    try:
        try:
            args = build_parser().parse_args(argv)
        except SystemExit as exc:
            # --help has printed its text; argparse ends by exiting, which main turns into a
            # status so that callers (and tests) are not exited from.
            return exc.code if isinstance(exc.code, int) else 0
        return run_from_args(args) if args.headless else open_app(args)
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except (UsageError, ConfigError) as exc:
        return _fail(exc, EXIT_USAGE)
    except SaveError as exc:
        return _fail(exc.strerror or exc, EXIT_FAILURE)
    except CommandFailed as exc:
        return _fail(exc, EXIT_FAILURE)
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}: {exc.filename or ''}", EXIT_FAILURE)
    except Exception as exc:
        # Reported, not hidden: one line names the exception so the failure can be reproduced.
        return _fail(f"unexpected {type(exc).__name__}: {exc}", EXIT_FAILURE)
