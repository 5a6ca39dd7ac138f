"""Weights read from a file for a run to start from, instead of drawing them.

An engineer checking a network of their own starts the app from the weights their code started
from and compares the updates one by one; a snapshot's .npz starts it from any iteration of an
earlier run.

Files read
----------
- ``.npz`` holding ``conv.weight`` (F, 3, K, K) and, optionally, ``conv.bias`` (F,),
  ``classifier.weight`` (F·H'·W',) or (F, H', W') and ``classifier.bias`` (a scalar or one
  value). Other arrays are left alone, so a snapshot's .npz is read as it is.
- ``.npy`` holding one array: the conv weights (F, 3, K, K), as a snapshot's .npy or a headless
  run's ``filters-*.npy``.

What the file does not give is made as without one: both layers are drawn from their
initialisers with the run's seed and the file's arrays then replace theirs; a bias the file
does not give starts at 0. Values are read as float64 (a float32 run rounds them).
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType

import numpy as np

from model.files import readable

PARAM_NAMES = ("conv.weight", "conv.bias", "classifier.weight", "classifier.bias")
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
        weights = read_weights(path)
        expected = data.get("sha256")
        if expected is not None and expected != weights.sha256:
            raise WeightsFileError(
                f"{readable(str(path))} is not the file this config was written with "
                "(its SHA-256 differs: it was changed or replaced)"
            )
        return weights


def _refuse(path: Path, why: str) -> WeightsFileError:
    return WeightsFileError(f"{readable(str(path))}: {why}")


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise _refuse(path, "is a folder, not a weights file")
        if size > MAX_FILE_BYTES:
            raise _refuse(path, f"{size:,} bytes is more than any run's weights take")
        return path.read_bytes()
    except OSError as exc:
        raise _refuse(path, exc.strerror or str(exc)) from None


NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGIC = b"PK\x03\x04"


def _arrays_of(path: Path, data: bytes) -> dict[str, np.ndarray]:
    """Every array the file holds, by name (an .npy's one array is 'conv.weight')."""
    if not data.startswith((NPY_MAGIC, ZIP_MAGIC)):
        raise _refuse(path, "is not a NumPy .npy or .npz file (np.save or np.savez writes them)")
    try:
        loaded = np.load(io.BytesIO(data), allow_pickle=False)
        if isinstance(loaded, np.ndarray):
            return {"conv.weight": loaded}
        with loaded:
            if "conv.weight" not in loaded.files:
                found = ", ".join(loaded.files) or "no arrays"
                raise _refuse(path, f"holds {found}; a weights file holds {EXPECTED}")
            return {key: loaded[key] for key in PARAM_NAMES if key in loaded.files}
    except WeightsFileError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise _refuse(path, "holds Python objects, not arrays of numbers") from None
        raise _refuse(path, f"cannot be read as NumPy arrays ({exc})") from None
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise _refuse(path, f"cannot be read as NumPy arrays ({exc})") from None


def _checked(path: Path, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The arrays as read-only float64, in the shapes the network uses, or a refusal that
    says which array is wrong and how."""
    out = {}
    for key, array in arrays.items():
        if array.dtype.kind not in "fiu":
            raise _refuse(path, f"{key} holds {array.dtype} values, not numbers")
        values = np.array(array, dtype=np.float64)
        bad = np.count_nonzero(~np.isfinite(values))
        if bad:
            raise _refuse(path, f"{key} has {bad:,} values that are not finite numbers")
        out[key] = values
    conv = out["conv.weight"]
    if conv.ndim != 4 or conv.shape[1] != 3 or conv.shape[2] != conv.shape[3]:
        raise _refuse(
            path,
            f"conv.weight has shape {conv.shape}; filters of RGB images are (F, 3, K, K)",
        )
    filters = conv.shape[0]
    if "conv.bias" in out:
        if out["conv.bias"].shape != (filters,):
            raise _refuse(
                path,
                f"conv.bias has shape {out['conv.bias'].shape}; {filters} filters need "
                f"({filters},)",
            )
    if "classifier.weight" in out:
        weight = out["classifier.weight"]
        if weight.ndim not in (1, 3) or (weight.ndim == 3 and weight.shape[0] != filters):
            raise _refuse(
                path,
                f"classifier.weight has shape {weight.shape}; it is (F·H'·W',) or "
                f"(F, H', W') with F = {filters}",
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
        raise WeightsDoNotFit(
            f"the weights file {readable(weights.name)} has {given:,} classifier weights; "
            f"{where} need {features:,}"
        )
