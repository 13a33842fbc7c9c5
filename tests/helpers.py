"""Plain helpers shared by the test modules; the fixtures built on them are in conftest.py.

- the command line: ``invoke``, ``train_once``, ``assert_user_error``, ``pictures_off``,
  ``ctrl_c_in_console``; as a child process: ``child_env``, ``cli_command``,
  ``wait_for_checkpoint``;
- runs: ``CtrlCAt`` (a reporter that presses Ctrl-C), ``run_small``, ``same_network``,
  ``assert_same_state``, ``model_arrays``, ``same_arrays``;
- data: ``tiny_sets``, ``write_mnist_files``, ``sgd_problem``, ``velocity_pairs``;
- file bytes: ``npy_header``, ``npy_bytes``, ``deflate``, ``write_zip``, ``bomb_zip``.
"""

import contextlib
import io
import os
import struct
import sys
import time
import types
import zipfile
import zlib
from pathlib import Path

import numpy as np

from jitnet.training import Reporter

REPO = Path(__file__).resolve().parents[1]


# -- the command line ------------------------------------------------------------------------


def invoke(*args):
    """``jitnet ARGS`` through click's test runner (each argument turned into a string)."""
    from click.testing import CliRunner

    from jitnet.cli.main import cli

    return CliRunner().invoke(cli, [str(a) for a in args])


def train_once(root, name, *args):
    """``jitnet train ARGS`` into ``root/runs/name``, which must succeed: a namespace of the
    click result, the run folder and its files."""
    result = invoke("train", *args, "--runs-dir", root / "runs", "--name", name)
    assert result.exit_code == 0, (result.output, result.exception)
    run = root / "runs" / name
    return types.SimpleNamespace(root=root, result=result, run=run, model=run / "model.npz",
                                 checkpoint=run / "checkpoint.npz")


def assert_one_line_error(result, *words):
    """Exit code 2 and one line on stderr starting with 'Error:' and holding each of ``words``
    (what :func:`assert_user_error` checks, less the empty stdout)."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def assert_user_error(result, *words):
    """Exit code 2, one line on stderr starting with 'Error:' and holding each of ``words``, no
    traceback, nothing on stdout."""
    assert result.exit_code == 2, (result.exit_code, result.output, result.exception)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "Traceback" not in result.output and result.stdout == ""
    for word in words:
        assert word in lines[0], lines[0]


@contextlib.contextmanager
def pictures_off():
    """Runs through the command line without the pictures ``train`` draws: about 2 s of
    matplotlib per run, where the test looks at none of them (tests/test_cli_pictures.py
    does)."""
    import pytest

    from jitnet.cli.pictures import RunPictures

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(RunPictures, "curve", lambda *args, **kwargs: None)
        patch.setattr(RunPictures, "final", lambda *args, **kwargs: None)
        yield


def _raise_in(epoch):
    """An ``epoch_start`` whose progress callback presses Ctrl-C during ``epoch``."""

    def epoch_start(self, current, epochs, n_samples):
        if current == epoch:
            def progress(n_done):
                raise KeyboardInterrupt

            return progress
        return None

    return epoch_start


class CtrlCAt(Reporter):
    """A reporter whose progress callback raises KeyboardInterrupt during epoch ``epoch``."""

    def __init__(self, epoch):
        self.epoch = epoch

    def epoch_start(self, epoch, epochs, n_samples):
        return _raise_in(self.epoch)(self, epoch, epochs, n_samples)


def ctrl_c_in_console(monkeypatch, epoch):
    """Ctrl-C during ``epoch`` of a run of the command line (its ConsoleReporter)."""
    from jitnet.cli.console import ConsoleReporter

    monkeypatch.setattr(ConsoleReporter, "epoch_start", _raise_in(epoch))


def child_env(**extra):
    """The environment of a child process that imports this checkout's jitnet."""
    path = os.pathsep.join([str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, **extra}


def cli_command(pictures=True, hold_epoch=None):
    """``python cli.py`` of this checkout as a child process (append its arguments), optionally
    without pictures (about 3 s of matplotlib a run) or holding in epoch ``hold_epoch``: the
    child then waits there (up to 10 minutes) for the signal a test sends it, so that a busy
    machine cannot let the run finish before the test interrupts it. It prints the resume
    command of ``python cli.py``."""
    lines = ["import runpy, sys, time"]
    if not pictures:
        lines.append("from jitnet.cli.pictures import RunPictures\n"
                     "RunPictures.curve = RunPictures.final = lambda *args, **kwargs: None")
    if hold_epoch is not None:
        lines.append(
            "from jitnet.cli.console import ConsoleReporter\n"
            "real_epoch_start = ConsoleReporter.epoch_start\n"
            "def hold(n_done):\n"
            "    end = time.monotonic() + 600\n"
            "    while time.monotonic() < end:\n"
            "        time.sleep(0.05)\n"
            "def epoch_start(self, epoch, epochs, n_samples):\n"
            f"    if epoch == {int(hold_epoch)}:\n"
            "        return hold\n"
            "    return real_epoch_start(self, epoch, epochs, n_samples)\n"
            "ConsoleReporter.epoch_start = epoch_start")
    lines.append(f"sys.argv[0] = {str(REPO / 'cli.py')!r}\n"
                 "runpy.run_path(sys.argv[0], run_name='__main__')")
    return [sys.executable, "-c", "\n".join(lines)]


def wait_for_checkpoint(path, epoch, proc, timeout=120):
    """Wait until ``path`` holds a checkpoint at or after ``epoch`` while ``proc`` runs; return
    that epoch."""
    from jitnet.training import load_checkpoint

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it could be interrupted"
        if path.exists():
            saved = load_checkpoint(path).epoch
            if saved >= epoch:
                return saved
        time.sleep(0.01)
    raise AssertionError("no checkpoint appeared")


# -- runs ------------------------------------------------------------------------------------


def run_small(base, data, run_dir, reporter=None, **changes):
    """``run_training`` of the configuration ``{**base, **changes}`` on ``data`` (train, test)."""
    from jitnet.training import TrainConfig, prepare_data, run_training

    config = TrainConfig(**{**base, **changes})
    return run_training(config, run_dir, splits=prepare_data(config, *data), reporter=reporter)


def same_network(a, b):
    return a.sizes == b.sizes and a.dtype == b.dtype and np.array_equal(a.params, b.params)


def assert_same_state(a, b):
    """Two TrainStates of the same run, one of them interrupted and resumed: bitwise the same
    networks (and momentum), losses, evaluations and log records."""
    assert a.epoch == b.epoch
    assert same_network(a.net, b.net) and same_network(a.best, b.best)
    if a.net.velocity is None or b.net.velocity is None:
        assert a.net.velocity is None and b.net.velocity is None
    else:
        assert np.array_equal(a.net.velocity, b.net.velocity)
    assert a.losses == b.losses
    assert [h["val_error"] for h in a.history] == [h["val_error"] for h in b.history]
    assert [r["epoch"] for r in a.records] == [r["epoch"] for r in b.records]
    assert [r["rate"] for r in a.records] == [r["rate"] for r in b.records]


def model_arrays(path):
    """The network arrays of a model file (not its description, which names its paths)."""
    with np.load(path) as f:
        return {k: f[k] for k in f.files if k != "jitnet_train_info"}


def same_arrays(a, b):
    return sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


# -- data ------------------------------------------------------------------------------------


def tiny_sets(seed=0, side=4, n_train=60, n_test=20):
    """Training and test images of side x side raw pixels in 3 classes, learnable (each class
    brighter than the last): a run takes milliseconds."""
    from jitnet.data.datasets import Dataset

    rng = np.random.default_rng(seed)

    def make(n, name):
        labels = rng.integers(0, 3, n)
        images = rng.integers(0, 60, (n, side * side)) + 60 * labels[:, None]
        return Dataset(images.astype(np.uint8), labels, (side, side), 3, name)

    return make(n_train, "train"), make(n_test, "test")


def write_mnist_files(folder, train, test):
    """Two Datasets in MNIST's four-file IDX layout, for the command line's --data."""
    from jitnet.data.idx import write_idx

    folder.mkdir()
    for prefix, data in (("train", train), ("t10k", test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte",
                  data.images.reshape(len(data), *data.image_shape))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte", data.labels.astype(np.uint8))
    return folder


def sgd_problem(sizes, loss="squared", seed=0, sparsity=0.0, init_limit=0.5, n=200):
    """``n`` inputs in [0, 1) (a fraction ``sparsity`` zero, like MNIST's background), targets
    for the loss (0.1/0.9 vectors, or random distributions for cross-entropy), and initial
    weights uniform(-init_limit, init_limit): larger than the engines' own, so that training
    moves the units off their linear middle."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, sizes[0]))
    X[rng.random(X.shape) < sparsity] = 0.0
    if loss == "cross_entropy":
        T = rng.random((n, sizes[-1])) ** 4
        T /= T.sum(axis=1, keepdims=True)
    else:
        T = np.where(rng.random((n, sizes[-1])) < 0.5, 0.1, 0.9)
    init = [
        (rng.uniform(-init_limit, init_limit, (n_out, n_in)),
         rng.uniform(-init_limit, init_limit, n_out))
        for n_in, n_out in zip(sizes[:-1], sizes[1:])
    ]
    return X, T, init


def velocity_pairs(net):
    """The velocity laid out as float64 (W, b) pairs, like get_weights (zeros before any
    momentum)."""
    holder = net.copy()
    holder.params[...] = 0.0 if net.velocity is None else net.velocity
    return [(W.astype(np.float64), b.astype(np.float64)) for W, b in holder.get_weights()]


# -- file bytes ------------------------------------------------------------------------------


def npy_header(descr, shape):
    """A version 1.0 .npy header declaring ``descr`` and ``shape`` (a tuple, or its text)."""
    text = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }\n" % (descr, shape)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def npy_bytes(array):
    """The .npy file numpy writes for ``array``."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=array.dtype.kind == "O")
    return buffer.getvalue()


def deflate(*parts, wbits=-zlib.MAX_WBITS):
    """A deflate stream of ``parts`` in order: bytes as they are, an int as that many MiB of
    zeros, built without inflating anything: after a full flush every MiB of zeros deflates to
    the same ~1 KB block, so N MiB of zeros is one block repeated N times."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    out = []
    for part in parts:
        if isinstance(part, int):
            block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
            out.append(block * part)
        else:
            out.append(compressor.compress(part) + compressor.flush(zlib.Z_FULL_FLUSH))
    return b"".join(out) + compressor.flush()


def write_zip(path, members, method=zipfile.ZIP_STORED):
    """An .npz of ``members`` (name: array, or the .npy bytes themselves)."""
    with zipfile.ZipFile(path, "w", compression=method) as archive:
        for name, value in members.items():
            archive.writestr(name + ".npy", value if isinstance(value, bytes) else npy_bytes(value))
    return path


def bomb_zip(path, members, name, header, nbytes, n_mib=None):
    """``members`` stored, plus a deflated member ``name``: ``header`` and ``nbytes`` zeros, as
    its zip entry declares them (a CRC of 0: it must be refused before anything checks). Its
    deflate data holds ``n_mib`` MiB of zeros (default: the ``nbytes`` it declares)."""
    body = bytearray(write_zip(path, members).read_bytes())
    directory_at = body.rindex(b"PK\x05\x06")
    count = len(members) + 1
    start_of_directory = struct.unpack("<I", body[directory_at + 16 : directory_at + 20])[0]
    body, directory = body[:start_of_directory], body[start_of_directory:directory_at]
    payload = deflate(header, -(-nbytes >> 20) if n_mib is None else n_mib)
    size, encoded, offset = len(header) + nbytes, name.encode(), len(body)
    body += struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0, 0, len(payload), size,
                        len(encoded), 0) + encoded + payload
    directory += struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, 0, len(payload),
                             size, len(encoded), 0, 0, 0, 0, 0, offset) + encoded
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, count, count, len(directory), len(body), 0)
    path.write_bytes(bytes(body + directory + end))
    return path
