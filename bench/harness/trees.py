"""Two jitnet source trees timed in one run, each in a worker process of its own.

An old revision's kernels and the current ones then run interleaved on the same machine, through
the same public API (``Network(...).train_epoch``), in separate processes: no module of one tree
can shadow the other's, and each keeps its own Numba cache.

``source_tree(path=..., rev=...)`` gives a tree: an existing folder holding ``jitnet/`` (e.g. a
``git worktree`` of the old revision), or a revision of this repository exported by ``git
archive`` into a temporary folder (kept for later runs). ``Worker(tree)`` starts
``tree_worker.py`` with that tree first on its path and a Numba cache folder named after a hash
of the tree's sources, so nothing is written into the tree and an edited source never loads stale
machine code (Numba does not notice changes of a function inlined from another module).
"""

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile

from harness import BenchError

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))  # the source tree this harness belongs to
SCRATCH = os.path.join(tempfile.gettempdir(), "jitnet-bench")


def _git(*args):
    done = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, check=False)
    if done.returncode != 0:
        message = done.stderr.decode(errors="replace").strip().splitlines() or ["git failed"]
        raise BenchError(f"git {' '.join(args)}: {message[-1]}")
    return done.stdout


def source_tree(path=None, rev=None):
    """The folder of a jitnet source tree: ``path`` itself, or revision ``rev`` of this
    repository exported into a temporary folder (once; later runs reuse it)."""
    if path is not None:
        path = os.path.abspath(path)
        if not os.path.isfile(os.path.join(path, "jitnet", "__init__.py")):
            raise BenchError(f"{path}: not a jitnet source tree (no jitnet/__init__.py)")
        return path
    commit = _git("rev-parse", "--verify", f"{rev}^{{commit}}").decode().strip()
    folder = os.path.join(SCRATCH, "trees", commit)
    done_marker = os.path.join(folder, ".exported")
    if not os.path.exists(done_marker):
        os.makedirs(folder, exist_ok=True)
        archive = os.path.join(folder, ".archive.tar")
        with open(archive, "wb") as f:
            f.write(_git("archive", "--format=tar", commit, "jitnet"))
        with tarfile.open(archive) as tar:
            tar.extractall(folder, filter="data")
        os.remove(archive)
        open(done_marker, "w").close()
    return folder


def sources_digest(tree):
    """SHA-1 of every Python source under the tree's ``jitnet/``, names and contents."""
    digest = hashlib.sha1()
    package = os.path.join(tree, "jitnet")
    for folder, dirs, files in sorted(os.walk(package)):
        dirs.sort()
        for name in sorted(files):
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                digest.update(os.path.relpath(path, package).encode())
                with open(path, "rb") as f:
                    digest.update(f.read())
    return digest.hexdigest()


class Worker:
    """A process that imports jitnet from ``tree`` and trains networks on request.

    Requests and answers are JSON lines (see ``tree_worker.py``); every answer that carries an
    ``error`` raises :class:`~harness.BenchError`.
    """

    def __init__(self, tree, name):
        self.tree, self.name = tree, name
        cache = os.path.join(SCRATCH, "numba", sources_digest(tree)[:16])
        env = dict(os.environ, PYTHONPATH=tree, NUMBA_CACHE_DIR=cache,
                   PYTHONDONTWRITEBYTECODE="1")
        self.process = subprocess.Popen(
            [sys.executable, os.path.join(HERE, "tree_worker.py")], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, text=True, env=env, cwd=tree)
        self.jitnet = self.call(op="hello")["jitnet"]
        if not os.path.abspath(self.jitnet).startswith(os.path.abspath(tree) + os.sep):
            self.close()
            raise BenchError(f"the {name} worker imported jitnet from {self.jitnet}, not from "
                             f"{tree}")

    def call(self, **request):
        try:
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            line = self.process.stdout.readline()
        except (BrokenPipeError, OSError):
            line = ""
        if not line:
            raise BenchError(f"the {self.name} worker ({self.tree}) stopped; see its messages "
                             "above")
        answer = json.loads(line)
        if "error" in answer:
            raise BenchError(f"the {self.name} worker: {answer['error']}")
        return answer

    def setup(self, key, sizes, dtype, samples, network=None, distort=None):
        """Network ``key``: ``Network(sizes, dtype=dtype, seed=0, **network)`` with the first
        ``samples`` MNIST training images and their targets (and with ``distort``, a dict of
        ``jitnet.Distortion`` fields, one epoch's draws of it, the same in every epoch)."""
        return self.call(op="setup", key=key, sizes=list(sizes), dtype=dtype, samples=samples,
                         network=network or {}, distort=distort)

    def epoch(self, key, samples, rate, threads=1, options=None, evaluate=False):
        """One ``train_epoch`` of network ``key`` from its starting parameters over its first
        ``samples`` images: {"wall", "cpu" (seconds; cpu: the calling thread's), "loss",
        "digest" (of the parameters after it), and "test_error" when ``evaluate``}."""
        return self.call(op="epoch", key=key, samples=samples, rate=rate, threads=threads,
                         options=options or {}, evaluate=evaluate)

    def close(self):
        if self.process.poll() is None:
            try:
                self.process.stdin.close()
            except OSError:
                pass
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
