"""Starting child processes with single-threaded BLAS.

A process that has a core of its own (a sweep worker, the app's training process) gains
nothing from BLAS threads on top: they compete with the other processes for the same cores,
OpenBLAS threads spin for a while after every call, and on this project's small matrices one
thread measured as fast as two. The variables are read when a process loads NumPy, so they
only need to be set while the children start; the parent's own settings are restored after.
"""

from __future__ import annotations

import contextlib
import os

#: Thread-count variables of the BLAS libraries NumPy may use.
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


@contextlib.contextmanager
def single_threaded_blas():
    """Within this block, child processes that start load NumPy with one BLAS thread."""
    saved = {name: os.environ.get(name) for name in BLAS_THREAD_VARIABLES}
    os.environ.update(dict.fromkeys(BLAS_THREAD_VARIABLES, "1"))
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
