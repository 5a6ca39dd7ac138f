"""A batch shared between this process and helper processes (model.parallel)."""

import errno
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import model
from model import network, parallel
from tests.model.conftest import make_params

ROOT = Path(__file__).resolve().parents[2]
#: A script that shares a small batch with a helper; its loss is ``loss``.
SHARING_SCRIPT = (
    "import numpy as np\n"
    "from model import network, parallel\n"
    "parallel.MIN_BATCH_VALUES = 0\n"
    "rng = np.random.default_rng(0)\n"
    "x = rng.normal(size=(4, 3, 8, 8))\n"
    "params = {'conv.weight': rng.normal(size=(2, 3, 3, 3)), 'conv.bias': np.zeros(2),\n"
    "          'classifier.weight': rng.normal(size=128), 'classifier.bias': np.zeros(())}\n"
    "loss, _ = network.loss_and_gradients(params, x, np.array([0, 1, 0, 1]), threads=2)\n"
)


@pytest.fixture
def small_batches_shared(monkeypatch):
    """Small batches go to helpers too (the threshold is for speed, not for the numbers)."""
    monkeypatch.setattr(parallel, "MIN_BATCH_VALUES", 0)


@pytest.fixture(scope="module", autouse=True)
def helpers_closed():
    yield
    parallel.close_helpers()


def problem(rng, dtype=np.float64, images=5, padding="same"):
    x = rng.normal(size=(images, 3, 7, 6)).astype(dtype)
    labels = np.arange(images) % 2
    params = make_params(rng, filters=3, height=7, width=6, padding=padding, dtype=dtype)
    return params, x, labels


@pytest.mark.parametrize("threads", [2, 3])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    "activation,padding",
    [("relu", "same"), ("relu", "valid"), ("leaky_relu", "same"), ("identity", "same")],
)
def test_helpers_give_one_processs_numbers_but_for_rounding(
    rng, small_batches_shared, monkeypatch, threads, dtype, activation, padding
):
    params, x, labels = problem(rng, dtype, padding=padding)
    kwargs = {"activation": activation, "negative_slope": 0.1, "padding": padding}
    loss, grads = network.loss_and_gradients(params, x, labels, **kwargs)
    calls = []
    real = parallel._by_images
    monkeypatch.setattr(parallel, "_by_images", lambda *args: calls.append(args[3]) or real(*args))
    shared_loss, shared_grads = network.loss_and_gradients(
        params, x, labels, threads=threads, **kwargs
    )
    assert calls == [threads]  # (it did go to the helpers)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    assert shared_loss == pytest.approx(loss, rel=rtol)
    for key in model.PARAM_KEYS:
        assert shared_grads[key].dtype == dtype and shared_grads[key].shape == grads[key].shape
        # Summed in another order: equal up to rounding, relative to the gradient's size (an
        # element that cancels to near zero may differ by more, relatively).
        difference = np.linalg.norm(shared_grads[key] - grads[key])
        assert difference <= rtol * np.linalg.norm(grads[key]), key
    # The same numbers from call to call: the parts are fixed and summed in order.
    again = network.loss_and_gradients(params, x, labels, threads=threads, **kwargs)
    assert again[0] == shared_loss
    for key in model.PARAM_KEYS:
        np.testing.assert_array_equal(again[1][key], shared_grads[key])


def test_which_batches_go_to_helpers():
    threshold = parallel.MIN_BATCH_VALUES
    # The benchmark's (16, 64, 64, 8): 524,288 values, maps too small for threads.
    assert parallel.worth_sharing(16, 8, 64 * 64, threads=2)
    assert not parallel.worth_sharing(16, 8, 64 * 64, threads=1)
    assert not parallel.worth_sharing(2, 1, 64 * 64, threads=2)  # below the threshold
    assert not parallel.worth_sharing(1, 8, 64 * 64, threads=2)  # one image: nothing to share
    assert threshold > 2 * 64 * 64
    # Maps of 262,144 values an image and more: threads share them (network.forward).
    assert not parallel.worth_sharing(64, 16, 128 * 128, threads=2)


def test_a_helper_that_ended_is_replaced(rng, small_batches_shared, monkeypatch):
    params, x, labels = problem(rng)
    expected = network.loss_and_gradients(params, x, labels, threads=2)
    helper = parallel._helpers[0]  # (the one a batch shared by two uses)
    helper.process.kill()
    helper.process.wait()
    # Ended between two calls: replaced, and the call goes on.
    again = network.loss_and_gradients(params, x, labels, threads=2)
    assert helper not in parallel._helpers
    assert again[0] == expected[0]
    for key in model.PARAM_KEYS:
        np.testing.assert_array_equal(again[1][key], expected[1][key])
    # Ended during a call, before its part reached it (deterministic; one killed after its part
    # was sent may have answered already, its part being small): the call fails and says so;
    # the next one has a new helper.
    send = parallel._Helper.send

    def die_then_send(self, *args):
        self.process.kill()
        self.process.wait()
        send(self, *args)

    monkeypatch.setattr(parallel._Helper, "send", die_then_send)
    with pytest.raises(RuntimeError, match="helper process ended unexpectedly"):
        network.loss_and_gradients(params, x, labels, threads=2)
    monkeypatch.setattr(parallel._Helper, "send", send)
    assert network.loss_and_gradients(params, x, labels, threads=2)[0] == expected[0]


def test_a_helper_outlives_the_terminals_ctrl_c(rng, small_batches_shared):
    """Ctrl+C reaches every process of the terminal's group: the caller decides what it means
    (a headless run finishes its iteration first), so a helper takes no notice of it."""
    params, x, labels = problem(rng)
    expected = network.loss_and_gradients(params, x, labels, threads=2)
    helper = parallel._helpers[0]
    os.kill(helper.process.pid, signal.SIGINT)
    with pytest.raises(subprocess.TimeoutExpired):
        helper.process.wait(timeout=0.5)
    assert network.loss_and_gradients(params, x, labels, threads=2)[0] == expected[0]
    assert parallel._helpers[0] is helper


def test_a_helper_that_ends_while_it_computes_fails_the_call(
    rng, small_batches_shared, monkeypatch
):
    """Its reply never comes: the call fails and says so (a part of 64 images takes the helper
    milliseconds, far longer than the kill takes to arrive)."""
    x = rng.normal(size=(128, 3, 32, 32))
    labels = np.arange(128) % 2
    params = make_params(rng, filters=8, height=32, width=32)
    network.loss_and_gradients(params, x, labels, threads=2)  # (a helper running)
    send = parallel._Helper.send

    def send_then_die(self, *args):
        send(self, *args)
        self.process.kill()

    monkeypatch.setattr(parallel._Helper, "send", send_then_die)
    with pytest.raises(RuntimeError, match="helper process ended unexpectedly"):
        network.loss_and_gradients(params, x, labels, threads=2)


def test_floating_point_errors_in_a_helpers_part_reach_the_caller(rng, small_batches_shared):
    params, x, labels = problem(rng, np.float32, images=4)
    x[3] = 3e38  # only the helper's part (images 2-3) overflows
    with np.errstate(over="raise", invalid="ignore"), pytest.raises(FloatingPointError):
        network.loss_and_gradients(params, x, labels, threads=2)
    with np.errstate(over="warn", invalid="ignore"), pytest.warns(RuntimeWarning, match="overflow"):
        network.loss_and_gradients(params, x, labels, threads=2)
    # And the helpers go on working after a failure.
    params, x, labels = problem(rng)
    shared = network.loss_and_gradients(params, x, labels, threads=2)
    alone = network.loss_and_gradients(params, x, labels)
    assert shared[0] == pytest.approx(alone[0], rel=1e-12)


def test_a_second_caller_meanwhile_computes_in_its_own_process(rng, small_batches_shared):
    params, x, labels = problem(rng)
    alone = network.loss_and_gradients(params, x, labels)
    with parallel._lock:  # another thread's batch holds the helpers
        assert parallel.loss_and_gradients(params, x, labels, 2, {}) is None
        shared = network.loss_and_gradients(params, x, labels, threads=2)
    assert shared[0] == pytest.approx(alone[0], rel=1e-12)
    results = []

    def call():
        results.append(network.loss_and_gradients(params, x, labels, threads=2)[0])

    callers = [threading.Thread(target=call) for _ in range(4)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert results == pytest.approx([alone[0]] * 4, rel=1e-12)


def test_a_script_without_a_main_guard_can_share_its_batches():
    """Helpers are plain interpreters: multiprocessing's spawn would run the script again."""
    script = SHARING_SCRIPT + "assert len(parallel._helpers) == 1\nprint('once', loss)\n"
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=environment, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("once") == 1
    assert "leaked" not in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_closing_the_helpers_ends_them_and_frees_their_memory(rng, small_batches_shared):
    params, x, labels = problem(rng)
    network.loss_and_gradients(params, x, labels, threads=3)
    helpers = list(parallel._helpers)
    names = [helper.block.name for helper in helpers]
    assert len(helpers) == 2
    parallel.close_helpers()
    assert parallel._helpers == []
    for helper, name in zip(helpers, names, strict=True):
        assert helper.process.poll() is not None
        assert not Path("/dev/shm", name).exists()


def test_ctrl_c_during_a_call_leaves_no_reply_for_the_next(rng, small_batches_shared, monkeypatch):
    """A review: a KeyboardInterrupt after the helper was sent its part left its reply unread,
    and every later call read the reply of the call before: gradients one call behind."""
    params, x, labels = problem(rng)
    network.loss_and_gradients(params, x, labels, threads=2)  # (a helper running)
    helper = parallel._helpers[0]
    forward = network.forward

    def interrupted(*args, **kwargs):
        if kwargs.get("alongside"):
            raise KeyboardInterrupt
        return forward(*args, **kwargs)

    monkeypatch.setattr(network, "forward", interrupted)
    with pytest.raises(KeyboardInterrupt):
        network.loss_and_gradients(params, x, labels, threads=2)
    monkeypatch.setattr(network, "forward", forward)
    # Its reply unread, the helper was ended (the next one starts fresh): no reply is left
    # for the next call to take as its own. (The wrong numbers it gave depend on timing.)
    assert helper not in parallel._helpers and helper.process.poll() is not None
    for scale in (1.0, 2.0):  # other parameters: a stale reply would give the old ones' numbers
        changed = {key: value * scale for key, value in params.items()}
        alone = network.loss_and_gradients(changed, x, labels)
        shared = network.loss_and_gradients(changed, x, labels, threads=2)
        assert shared[0] == pytest.approx(alone[0], rel=1e-12)
        for key in model.PARAM_KEYS:
            np.testing.assert_allclose(shared[1][key], alone[1][key], rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize("cause", ["no engine", "no shared memory"])
def test_without_helpers_a_batch_is_computed_in_this_process(
    rng, small_batches_shared, monkeypatch, cause
):
    """A helper that cannot load the engine (another interpreter), or shared memory without
    room (a container's 64 MB /dev/shm killed the process with SIGBUS): said once, and the
    batches are computed here."""
    parallel.close_helpers()
    monkeypatch.setattr(parallel, "_unavailable", "")
    if cause == "no engine":
        monkeypatch.setattr(parallel.sys, "executable", "/bin/false")
    else:

        def full(*_args):
            raise OSError(errno.ENOSPC, "No space left on device")

        monkeypatch.setattr(parallel.os, "posix_fallocate", full)
    params, x, labels = problem(rng)
    alone = network.loss_and_gradients(params, x, labels)
    with pytest.warns(RuntimeWarning, match="computed in this process from now on"):
        shared = network.loss_and_gradients(params, x, labels, threads=2)
    assert shared[0] == alone[0]
    again = network.loss_and_gradients(params, x, labels, threads=2)  # (not tried again)
    assert again[0] == alone[0]
    monkeypatch.undo()


def test_a_script_in_a_folder_with_a_model_of_its_own_still_gets_helpers(tmp_path):
    """A review: "python -c" puts the working directory first on a helper's path, and a
    project's own "model" package there was imported instead of the engine."""
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "__init__.py").write_text("raise ImportError('not the engine')\n")
    script = tmp_path / "elsewhere" / "run.py"
    script.parent.mkdir()
    script.write_text(
        SHARING_SCRIPT
        + "assert len(parallel._helpers) == 1 and not parallel._unavailable\n"
        + "print('helpers used')\n"
    )
    environment = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-W", "error", str(script)],
        cwd=tmp_path,  # (where the other "model" is)
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "helpers used" in done.stdout


def test_a_forked_child_leaves_the_parents_helpers_alone(rng, small_batches_shared):
    """A review: a forked child's exit ended the parent's helpers and unlinked their memory."""
    params, x, labels = problem(rng)
    expected = network.loss_and_gradients(params, x, labels, threads=2)
    pid = os.fork()
    if pid == 0:  # the child: what its exit would do
        status = 0 if parallel._helpers == [] else 1
        parallel.close_helpers()
        os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    again = network.loss_and_gradients(params, x, labels, threads=2)
    assert again[0] == expected[0]


def test_without_posix_fallocate_blocks_are_made_all_the_same(
    rng, small_batches_shared, monkeypatch
):
    """macOS has no posix_fallocate (nor a small file system for shared memory)."""
    parallel.close_helpers()
    monkeypatch.delattr(parallel.os, "posix_fallocate")
    params, x, labels = problem(rng)
    alone = network.loss_and_gradients(params, x, labels)
    shared = network.loss_and_gradients(params, x, labels, threads=2)
    assert len(parallel._helpers) == 1 and shared[0] == pytest.approx(alone[0], rel=1e-12)


def test_where_helpers_cannot_run_batches_are_computed_here_without_a_warning(
    rng, small_batches_shared, monkeypatch, recwarn
):
    """On Windows (no pass_fds) helpers are never started: as with one thread, silently."""
    parallel.close_helpers()
    monkeypatch.setattr(parallel, "_unavailable", "helper processes need a POSIX system")
    params, x, labels = problem(rng)
    assert (
        network.loss_and_gradients(params, x, labels, threads=2)[0]
        == (network.loss_and_gradients(params, x, labels)[0])
    )
    assert parallel._helpers == [] and not recwarn.list
