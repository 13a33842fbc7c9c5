"""Atomic file writes: a reader (or a crash) sees either the old file or the complete new one."""

import io
import os
import tempfile

import numpy as np


def _read_umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()  # read once: changing the umask is process-wide

#: Names of the temporary files beside a file being written; a process killed between create and
#: rename leaves one behind, and whoever owns the folder may delete them.
TEMP_PREFIX = ".tmp-"


def atomic_write(path, write):
    """Create ``path`` by calling ``write(file)`` on a temporary file beside it, then fsync and
    rename it into place (and fsync the directory, so the rename survives a crash too).

    On any error, including KeyboardInterrupt, the temporary file is removed and an existing
    ``path`` is left untouched. An OSError names ``path`` (its ``filename``), not the temporary
    file, so that "disk full" says which file could not be written.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=os.path.basename(path),
                                   dir=directory)
    except OSError as exc:
        if exc.errno is not None:
            exc.filename, exc.filename2 = path, None
        raise
    try:
        with os.fdopen(fd, "wb") as f:
            # mkstemp makes the file private (0600); give it the permissions open() would.
            os.fchmod(f.fileno(), 0o666 & ~_UMASK)
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and exc.errno is not None:
            exc.filename, exc.filename2 = path, None
        raise
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


def atomic_write_bytes(path, data):
    """Write ``data`` (bytes) to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(data))


def atomic_save_npz(path, arrays):
    """Save a dict of arrays as an uncompressed ``.npz`` atomically.

    The archive is built in memory first (a few MB for MNIST-sized networks), so the file is
    written by one plain ``write`` call.
    """
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getbuffer())
