"""Safe file access: atomic writes, and opening untrusted data files for reading.

Writes: a reader (or a crash) sees either the old file or the complete new one.
Reads: `open_regular` opens only regular files (never a FIFO, device or directory, whose reads
could block or never end), and `display_path` makes any path printable on one line.
"""

import os
import stat
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
    """Save a dict of arrays as an uncompressed ``.npz`` atomically, streamed to the file (a
    model of any size needs no second copy in memory)."""
    atomic_write(path, lambda file: np.savez(file, **arrays))


# O_NONBLOCK: opening a FIFO must not wait for a writer; O_NOCTTY: a terminal must not become ours.
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
_KIND_OF_MODE = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def display_path(path):
    """``path`` as text for a one-line message: control and unprintable characters escaped."""
    text = os.fsdecode(path) if isinstance(path, bytes) else str(path)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def open_regular(path, error_cls, label=None):
    """Open ``path`` for binary reading, refusing anything but an existing regular file.

    Parameters
    ----------
    path : str, bytes or os.PathLike
    error_cls : type
        Exception raised, with a one-line message starting with the path, for every failure.
    label : str, optional
        Put before the path in messages, e.g. ``"checkpoint"``.

    Returns
    -------
    file : io.BufferedReader
    size : int
        The file's size in bytes when it was opened (``os.fstat``), to check declared sizes
        against before reading anything.
    """
    name = display_path(os.fspath(path))
    if label:
        name = f"{label} {name}"
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except (ValueError, UnicodeError) as error:  # embedded NUL byte; unencodable characters
        problem = "it contains a NUL byte" if "null" in str(error) else error
        raise error_cls(f"{name}: invalid file name ({problem})") from None
    except FileNotFoundError:
        raise error_cls(f"{name}: no such file") from None
    except OSError as error:
        raise error_cls(f"{name}: cannot open ({error.strerror or error})") from None
    try:
        mode = os.fstat(fd)
        kind = next((what for test, what in _KIND_OF_MODE if test(mode.st_mode)), None)
        if kind is None and not stat.S_ISREG(mode.st_mode):
            kind = "a special file"
        if kind is not None:
            raise error_cls(f"{name}: cannot read {kind}; expected a regular file")
        return os.fdopen(fd, "rb"), mode.st_size
    except BaseException:
        os.close(fd)
        raise
