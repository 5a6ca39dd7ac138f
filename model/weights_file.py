"""Weights read from a file for a run to start from, instead of drawing them.

An engineer checking a network of their own starts the app from the weights their code started
from and compares the updates one by one; a snapshot's .npz starts it from any iteration of an
earlier run.

Files read
----------
- ``.npz`` holding ``conv.weight`` (F, 3, K, K) and, optionally, ``conv.bias`` (F,),
  ``classifier.weight`` (F·H'·W',) or (F, H', W'), either with a leading 1 (PyTorch's
  ``nn.Linear(D, 1)``), and ``classifier.bias`` (a scalar or one value). A snapshot's other
  arrays (gradients, updates, momentum, logits, maps, ...) are read past, so its .npz is read
  as it is; any other name is refused (a misspelt 'conv.biases' would have been drawn).
- ``.npy`` holding one array: the conv weights (F, 3, K, K), as a snapshot's .npy or a headless
  run's ``filters-*.npy``.

What the file does not give is drawn as without one, for the file's number and size of
filters: both layers are drawn from their initialisers with the run's seed and the file's
arrays then replace theirs; a bias the file does not give starts at 0. Values are read as
float64 (a float32 run rounds them). A file is refused, saying which array and why, before
it is read whole when its headers declare more values than any run has.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import os
import stat
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from model.data import MAX_SIDE
from model.files import npz_bytes, readable
from model.formatting import format_count, format_filters
from model.layers import MAX_FILTERS, MAX_KERNEL

PARAM_NAMES = ("conv.weight", "conv.bias", "classifier.weight", "classifier.bias")
NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"
EMPTY_ZIP_MAGIC = b"PK\x05\x06"  # (np.savez of no arrays)
#: The other arrays of a snapshot's .npz (``model.snapshot.snapshot_arrays``), read past.
SNAPSHOT_ARRAYS = ("logits", "probabilities", "losses", "batch", "pre_activation", "activation")
SNAPSHOT_PREFIXES = ("grad.", "update.", "velocity.")
#: The copy of the weights a report or a headless run writes beside its config.json.
COPY_NAME = "initial_weights.npz"
#: Larger than any run can use (64 filters over 1024×1024 images take 512 MiB in float64).
MAX_FILE_BYTES = 1 << 30
EXPECTED = (
    "conv.weight (F, 3, K, K) and optionally conv.bias (F,), classifier.weight "
    "(F·H'·W',) and classifier.bias"
)


class WeightsFileError(ValueError):
    """A weights file that cannot be read or does not hold weights this app can start from."""


class WeightsDoNotFit(ValueError):
    """Weights whose classifier is not one weight per ReLU output of the images at hand."""


@dataclass(frozen=True, eq=False)
class StartingWeights:
    """The arrays of a weights file (read-only float64, keys among ``PARAM_NAMES``, always
    ``conv.weight``), the file's path when read and the SHA-256 of its bytes.

    Two are equal when their files' bytes were: a run started from either is the same run.
    """

    path: str
    sha256: str
    arrays: Mapping[str, np.ndarray]

    def __post_init__(self) -> None:
        arrays = dict(self.arrays)
        for values in arrays.values():
            values.flags.writeable = False
        object.__setattr__(self, "arrays", MappingProxyType(arrays))

    def __reduce__(self):
        # (a mapping proxy does not pickle: configs go to the training process and trials)
        return StartingWeights, (self.path, self.sha256, dict(self.arrays))

    def __eq__(self, other) -> bool:
        return isinstance(other, StartingWeights) and other.sha256 == self.sha256

    def __hash__(self) -> int:
        return hash(self.sha256)

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def conv_shape(self) -> tuple[int, int, int, int]:
        return self.arrays["conv.weight"].shape

    @functools.cached_property
    def largest(self) -> float:
        """The largest |value| of the arrays (found once: every config check asks for it)."""
        return max(float(np.abs(values).max()) for values in self.arrays.values())

    def gives_classifier(self) -> bool:
        return "classifier.weight" in self.arrays

    def describe(self) -> str:
        """Short human form: the file's name and what it gives, e.g.
        "w.npz (1×3×3×3 filter weights, classifier weights)"."""
        shape = "×".join(str(n) for n in self.conv_shape)
        parts = [f"{shape} filter weights"]
        if "conv.bias" in self.arrays:
            parts.append("filter biases")
        if self.gives_classifier():
            parts.append(f"{self.arrays['classifier.weight'].size:,} classifier weights")
        if "classifier.bias" in self.arrays:
            parts.append("classifier bias")
        return f"{readable(self.name)} ({', '.join(parts)})"

    def to_dict(self) -> dict:
        """JSON-ready form: the file and its digest; ``from_dict`` reads the file again and
        refuses it if its bytes changed."""
        return {"file": self.path, "sha256": self.sha256, "arrays": sorted(self.arrays)}

    @classmethod
    def from_dict(cls, data, base: str | os.PathLike | None = None) -> StartingWeights:
        """Read the file ``data`` names (relative to ``base`` when it is relative) and check
        that it still holds what it held (its SHA-256)."""
        if not isinstance(data, Mapping) or not isinstance(data.get("file"), str):
            raise WeightsFileError(f"must name a file, got {data!r}")
        path = Path(data["file"])
        if base is not None and not path.is_absolute():
            path = Path(base) / path
        copied_from = data.get("copied_from")
        if isinstance(copied_from, str) and not path.exists():
            raise _refuse(
                path,
                f"is missing: it is the copy of {readable(copied_from)} that the run started "
                "from, kept beside this config.json (was the folder copied whole?)",
            )
        weights = read_weights(path)
        expected = data.get("sha256")
        if expected is not None and expected != weights.sha256:
            raise WeightsFileError(
                f"{readable(str(path))} is not the file this config was written with "
                "(its SHA-256 differs: it was changed or replaced)"
            )
        return weights


def whole_network_beside(weights: StartingWeights) -> str | None:
    """The name of the snapshot's .npz beside ``weights`` read from its .npy (filters only),
    which holds the whole network; None when there is none or the file gave more (an
    engineer took a snapshot's .npy for the network and had the classifier drawn)."""
    path = Path(weights.path)
    if path.suffix.lower() != ".npy" or weights.gives_classifier():
        return None
    beside = path.with_suffix(".npz")
    return readable(beside.name) if beside.is_file() else None


def config_with_copy(config) -> tuple[dict, bytes | None]:
    """A config.json's config (``config.to_dict()``) and, when it starts from a weights file,
    the bytes of a copy of the weights to write as ``COPY_NAME`` beside it, which the config
    then names (relative to it, with its digest and the name of the file it was read from):
    the run repeats wherever its folder goes. Used by a report and a headless run alike."""
    data = config.to_dict()
    weights = config.initial_weights
    if weights is None:
        return data, None
    payload = npz_bytes(dict(weights.arrays))
    data["initial_weights"] = {
        **weights.to_dict(),
        "file": COPY_NAME,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "copied_from": weights.name,
    }
    return data, payload


def _refuse(path: Path, why: str) -> WeightsFileError:
    return WeightsFileError(f"{readable(str(path))}: {why}")


def _read_bytes(path: Path) -> bytes:
    """The file's bytes; a folder, a device or a pipe (which may never end) and a file larger
    than ``MAX_FILE_BYTES`` are refused."""
    try:
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            raise _refuse(path, "is a folder, not a weights file")
        if not stat.S_ISREG(mode):
            raise _refuse(path, "is not a regular file (a device or a pipe?)")
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise _refuse(path, exc.strerror or str(exc)) from None
    if len(data) > MAX_FILE_BYTES:
        raise _refuse(path, f"is larger than {MAX_FILE_BYTES:,} bytes, more than any run's weights")
    return data


#: The most values each array can have in a run (64 filters of 3×15×15, a classifier over 64
#: maps of 1024×1024); a bias is let through up to the filters' count, to be refused with its
#: shape.
MOST_VALUES = {
    "conv.weight": MAX_FILTERS * 3 * MAX_KERNEL**2,
    "conv.bias": MAX_FILTERS * 3 * MAX_KERNEL**2,
    "classifier.weight": MAX_FILTERS * MAX_SIDE**2,
    "classifier.bias": MAX_FILTERS * 3 * MAX_KERNEL**2,
}


def _declared_size(stream) -> int:
    """The number of values the header of the .npy at ``stream`` says follow."""
    version = np.lib.format.read_magic(stream)
    read = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, _fortran, _dtype = read(stream)
    return math.prod(shape)


def _check_declared(path: Path, data: bytes) -> None:
    """Refuse an array whose header declares more values than a run can have, before it is
    read: 200 bytes of .npz (compressed, or a header alone) can ask for terabytes."""

    def check(name: str, stream) -> None:
        declared = _declared_size(stream)
        if declared > MOST_VALUES[name]:
            raise _refuse(
                path,
                f"{name} has {declared:,} values, more than any run has ({MOST_VALUES[name]:,})",
            )

    if data.startswith(NPY_MAGIC):
        check("conv.weight", io.BytesIO(data))
        return
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        # Every member np.load serves as a weight, 'conv.weight.npy' or plain 'conv.weight'
        # (a review's 778 KB file held 100,000,000 values under the plain name).
        for member in archive.namelist():
            name = member.removesuffix(".npy")
            if name in PARAM_NAMES:
                with archive.open(member) as stream:
                    if stream.read(len(NPY_MAGIC)) != NPY_MAGIC:
                        raise _refuse(path, f"{name} is not a NumPy array (np.savez writes one)")
                with archive.open(member) as stream:
                    check(name, stream)


def _unknown(names) -> list[str]:
    """Names that are neither weights nor a snapshot's other arrays: a misspelt 'conv.biases'
    was read past, and the app drew that layer while the engineer's code used theirs."""
    return [
        name
        for name in names
        if name not in PARAM_NAMES
        and name not in SNAPSHOT_ARRAYS
        and not name.startswith(SNAPSHOT_PREFIXES)
    ]


def _arrays_of(path: Path, data: bytes) -> dict[str, np.ndarray]:
    """Every array the file holds, by name (an .npy's one array is 'conv.weight')."""
    if data.startswith(EMPTY_ZIP_MAGIC):
        raise _refuse(path, f"holds no arrays; a weights file holds {EXPECTED}")
    if not data.startswith((NPY_MAGIC, ZIP_MAGIC)):
        raise _refuse(path, "is not a NumPy .npy or .npz file (np.save or np.savez writes them)")
    try:
        _check_declared(path, data)
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"conv.weight": loaded}
        with loaded:
            if "conv.weight" not in loaded.files:
                found = ", ".join(loaded.files) or "no arrays"
                raise _refuse(path, f"holds {found}; a weights file holds {EXPECTED}")
            unknown = _unknown(loaded.files)
            if unknown:
                raise _refuse(
                    path,
                    f"holds {', '.join(unknown)}, which {'is' if len(unknown) == 1 else 'are'} "
                    f"none of {', '.join(PARAM_NAMES)} (a name misspelt?)",
                )
            return {key: loaded[key] for key in PARAM_NAMES if key in loaded.files}
    except WeightsFileError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise _refuse(path, "holds Python objects, not arrays of numbers") from None
        raise _refuse(path, f"cannot be read as NumPy arrays ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile, NotImplementedError, RuntimeError) as exc:
        # (RuntimeError: an encrypted member; NotImplementedError: a compression NumPy's
        # zipfile lacks)
        raise _refuse(path, f"cannot be read as NumPy arrays ({exc})") from None
    except MemoryError:
        raise _refuse(path, "is too large to read into memory") from None


def _checked(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays as read-only float64, in the shapes the network uses, or a refusal that
    says which array is wrong and how."""
    out = {}
    for key, array in arrays.items():
        if array.dtype.kind not in "fiu":
            raise _refuse(path, f"{key} holds {array.dtype} values, not numbers")
        if array.size == 0:
            raise _refuse(path, f"{key} has no values (shape {array.shape})")
        values = np.array(array, dtype=np.float64)
        bad = np.count_nonzero(~np.isfinite(values))
        if bad:
            raise _refuse(
                path, f"{key} has {format_count(bad, 'value')} that are not finite numbers"
            )
        out[key] = values
    conv = out["conv.weight"]
    if conv.ndim != 4 or conv.shape[1] != 3 or conv.shape[2] != conv.shape[3]:
        raise _refuse(
            path,
            f"conv.weight has shape {conv.shape}; filters of RGB images are (F, 3, K, K)",
        )
    filters, kernel = conv.shape[0], conv.shape[2]
    if filters > MAX_FILTERS or kernel > MAX_KERNEL:
        raise _refuse(
            path,
            f"conv.weight holds {format_filters(filters, kernel)}; the app takes at most "
            f"{format_filters(MAX_FILTERS, MAX_KERNEL)}",
        )
    if "conv.bias" in out:
        if out["conv.bias"].shape != (filters,):
            raise _refuse(
                path,
                f"conv.bias has shape {out['conv.bias'].shape}; {filters} filters need "
                f"({filters},)",
            )
    if "classifier.weight" in out:
        weight = out["classifier.weight"]
        # A leading 1 is one output, as PyTorch's nn.Linear(D, 1) keeps it: (1, D).
        shape = weight.shape[1:] if weight.ndim in (2, 4) and weight.shape[0] == 1 else weight.shape
        if len(shape) not in (1, 3) or (len(shape) == 3 and shape[0] != filters):
            raise _refuse(
                path,
                f"classifier.weight has shape {weight.shape}; it is (F·H'·W',) or "
                f"(F, H', W') with F = {filters}, or either with a leading 1",
            )
        out["classifier.weight"] = weight.reshape(-1)
    if "classifier.bias" in out:
        if out["classifier.bias"].size != 1:
            raise _refuse(
                path,
                f"classifier.bias has {out['classifier.bias'].size:,} values; it is one number",
            )
        out["classifier.bias"] = out["classifier.bias"].reshape(())
    return out


def read_weights(path: str | os.PathLike) -> StartingWeights:
    """The weights in the .npy or .npz file at ``path`` (see the module's docstring).

    Raises
    ------
    WeightsFileError
        The file cannot be read, is no NumPy file, or its arrays are not weights of this
        network (the message says which and why).
    """
    path = Path(path).absolute()
    data = _read_bytes(path)
    arrays = _checked(path, _arrays_of(path, data))
    return StartingWeights(path=str(path), sha256=hashlib.sha256(data).hexdigest(), arrays=arrays)


def check_classifier(weights: StartingWeights, features: int, where: str) -> None:
    """Raise ``WeightsDoNotFit`` when ``weights`` cannot start a classifier over ``features``
    ReLU outputs (``where`` says whose: "1 filter × 32×32 outputs")."""
    if not weights.gives_classifier():
        return
    given = weights.arrays["classifier.weight"].size
    if given != features:
        filters = weights.conv_shape[0]
        side = math.isqrt(given // filters)
        made_for = f" (made for {side}×{side} maps?)" if side * side * filters == given else ""
        raise WeightsDoNotFit(
            f"the weights file {readable(weights.name)} has {given:,} classifier "
            f"weights{made_for}; {where} need {features:,}"
        )
