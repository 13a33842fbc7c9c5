"""Strict reader and writer for IDX files, the format MNIST ships in, plain or gzip-compressed.

An IDX file is a 4-byte magic number -- two zero bytes, a type code, the number of dimensions --
then one big-endian int32 size per dimension, then the array's elements, big-endian, row-major:

    00 00 <type> <ndim> | <size 0> ... <size ndim-1> | <data>

Type codes: 0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32,
0x0E float64. Anything that does not match the header exactly -- wrong magic, unknown type code,
no dimensions, too few or too many data bytes, a damaged gzip stream -- raises `DataError` with the
file's path and what is wrong, in one line.

The reader's work is bounded by the file, never by what its header claims: the declared data
size is compared with the file's size (or, for gzip, with what its compressed bytes could hold)
before anything is allocated, and gzip data is inflated only up to the declared size.
"""

import gzip
import math
import os
import sys
import zlib

import numpy as np

from jitnet.io.errors import DataError  # noqa: F401 (re-exported)
from jitnet.io.atomic import atomic_write_bytes, display_path, open_regular

__all__ = ["DataError", "read_idx", "write_idx", "MAX_BYTES"]

# type code -> element type (native byte order; the file stores it big-endian)
_DTYPE_OF_CODE = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(np.int16),
    0x0C: np.dtype(np.int32),
    0x0D: np.dtype(np.float32),
    0x0E: np.dtype(np.float64),
}
# (kind, itemsize) -> type code, so that any byte order of a supported dtype is accepted
_CODE_OF_KIND = {(dtype.kind, dtype.itemsize): code for code, dtype in _DTYPE_OF_CODE.items()}
_KNOWN_CODES = ", ".join(f"0x{code:02X} {dtype}" for code, dtype in _DTYPE_OF_CODE.items())

#: Default limit on the data bytes `read_idx` accepts (1 GiB; MNIST's largest file is 47 MB).
MAX_BYTES = 1 << 30
_MAX_DIM = 2**31 - 1
# numpy 1.x builds arrays of at most 32 dimensions (2.x: 64); IDX's byte would allow 255.
_MAX_NDIM = 32

_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib parses the gzip header and checks CRC-32 and length
_CHUNK = 1 << 18  # compressed bytes read from the file at a time
_OUT_PIECE = 1 << 20  # inflated bytes asked of zlib at a time
_FIRST_STEP = 1 << 10  # compressed bytes first fed to a new gzip member; doubles per step
_MAX_MEMBERS = 1024  # gzip members allowed beyond one per 64 KiB of data
_TRAILER_CHECK = 1 << 24  # IDX data size from which the gzip trailer is checked first
# Deflate cannot expand data by more than about 1032:1; a header promising more than that is
# truncated whatever the stream holds, and must not make us allocate its claimed size.
_MAX_DEFLATE_RATIO = 1032



def read_idx(path, *, max_bytes=MAX_BYTES):
    """Read an IDX file, plain or gzip-compressed, into a NumPy array.

    Compression is detected from the content (the gzip magic bytes), not from the name.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read; it must be a regular file (not a pipe, device or directory).
    max_bytes : int, optional
        Largest array accepted, in bytes (default `MAX_BYTES`, 1 GiB). Checked against the
        header before anything is allocated; dimensions of size 0 count as 1 here, so that an
        empty array cannot declare absurd other dimensions.

    Returns
    -------
    numpy.ndarray
        Shape ``(size 0, ..., size ndim-1)`` as declared in the header; dtype uint8, int8, int16,
        int32, float32 or float64 (from the type code) in native byte order; C-contiguous,
        writable and owned by the caller. MNIST training images come back as ``(60000, 28, 28)``
        uint8, their labels as ``(60000,)`` uint8.

    Raises
    ------
    DataError
        The path is invalid, missing, unreadable or not a regular file; the file is not IDX
        (wrong magic), has an unknown type code, declares zero or more than 32 dimensions, a
        negative size or more than ``max_bytes`` of data, holds fewer or more data bytes than its
        header declares, or is a damaged gzip stream. The message starts with the path.
    """
    file, size = open_regular(path, DataError)
    name = display_path(os.fspath(path))
    try:
        with file:
            magic = file.read(2)
            if magic == _GZIP_MAGIC:
                if size > _gzip_input_bound(4 + 4 * _MAX_NDIM + max_bytes):
                    raise DataError(
                        f"{name}: a {size}-byte gzip file is larger than any IDX data within the "
                        f"{max_bytes}-byte limit needs (read_idx's max_bytes)"
                    )
                stream = _GzipStream(file, size, magic, name)
            else:
                stream = _PlainStream(file, size, magic, name)
            return _parse(stream, name, max_bytes)
    except OSError as error:
        raise DataError(f"{name}: cannot read ({error.strerror or error})") from None


def write_idx(path, array):
    """Write an array to an IDX file; gzip-compressed when the name ends in ``.gz``.

    The write is atomic: a reader sees either the old file or the complete new one, and no
    temporary file is left behind on failure. ``read_idx(path)`` returns an array equal to
    ``array`` in shape, dtype and every bit.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; missing parent directories are created.
    array : array_like
        1 to 32 dimensions, each size below 2**31; dtype uint8 (0x08), int8 (0x09), int16
        (0x0B), int32 (0x0C), float32 (0x0D) or float64 (0x0E), in either byte order.

    Raises
    ------
    DataError
        The path is invalid (a NUL byte); ``array`` is not an array of one of those dtypes
        (convert first, e.g. ``array.astype(np.int32)``); it is 0-d or has more than 32
        dimensions; or a dimension is too large for the header.
    OSError
        The file cannot be written.
    """
    name = display_path(os.fspath(path))
    if "\0" in os.fsdecode(os.fspath(path)):
        raise DataError(f"{name}: invalid file name (it contains a NUL byte)")
    try:
        array = np.asarray(array)
    except (ValueError, TypeError) as error:
        why = (str(error).strip().splitlines() or [type(error).__name__])[0]
        raise DataError(f"{name}: cannot write as IDX: not an array ({why})") from None
    code = _CODE_OF_KIND.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise DataError(
            f"{name}: cannot write dtype {array.dtype} as IDX; supported: uint8, int8, int16, "
            f"int32, float32, float64 (convert first, e.g. array.astype(np.int32))"
        )
    if not 1 <= array.ndim <= _MAX_NDIM:
        raise DataError(
            f"{name}: cannot write a {array.ndim}-d array as IDX; it needs 1 to {_MAX_NDIM} "
            f"dimensions"
        )
    if max(array.shape) > _MAX_DIM:
        raise DataError(f"{name}: shape {array.shape} does not fit IDX's 32-bit sizes")
    big_endian = _DTYPE_OF_CODE[code].newbyteorder(">")
    payload = (bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, ">i4").tobytes()
               + array.astype(big_endian, copy=False).tobytes(order="C"))
    if name.lower().endswith(".gz"):
        # mtime=0: the same array always gives the same bytes
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    atomic_write_bytes(path, payload)


def _parse(stream, name, max_bytes):
    """Check the IDX header in ``stream`` against the file and ``max_bytes``, then read the data."""
    head = stream.read(4)
    if len(head) < 4:
        raise DataError(f"{name}: not an IDX file: {len(head)} bytes long, a header needs 4")
    if head[:2] != b"\0\0":
        raise DataError(f"{name}: not an IDX file: it starts with bytes 0x{head[:2].hex()}, "
                        "expected 0x0000")
    code, ndim = head[2], head[3]
    dtype = _DTYPE_OF_CODE.get(code)
    if dtype is None:
        raise DataError(f"{name}: unknown IDX type code 0x{code:02X} (known: {_KNOWN_CODES})")
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares zero dimensions")
    if ndim > _MAX_NDIM:
        raise DataError(f"{name}: IDX header declares {ndim} dimensions; at most {_MAX_NDIM} "
                        "are supported")
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(f"{name}: truncated IDX header: {ndim} dimension sizes need "
                        f"{4 * ndim} bytes, found {len(sizes)}")
    shape = tuple(int(size) for size in np.frombuffer(sizes, dtype=">i4"))
    if min(shape) < 0:
        raise DataError(f"{name}: IDX header declares a negative size in shape {shape}")
    expected = math.prod(shape) * dtype.itemsize
    stream.check_capacity(4 + 4 * ndim, expected, shape, dtype)
    storage = math.prod(max(size, 1) for size in shape) * dtype.itemsize
    if storage > min(max_bytes, sys.maxsize):  # numpy cannot build shapes beyond sys.maxsize
        what = f"{storage} bytes" if expected else "no data (a 0 dimension) beside absurd ones"
        raise DataError(f"{name}: IDX header declares shape {shape} of {dtype}, {what}, over "
                        f"the {max_bytes}-byte limit (read_idx's max_bytes)")

    data = np.empty(math.prod(shape), dtype=dtype)
    found = stream.readinto(memoryview(data.view(np.uint8)))
    if found < expected:
        raise DataError(_truncated(name, shape, dtype, expected, found))
    stream.check_end(expected, shape, dtype)
    if dtype.itemsize > 1 and sys.byteorder == "little":
        data.byteswap(inplace=True)  # the file's bytes are big-endian
    return data.reshape(shape)


def _truncated(name, shape, dtype, expected, found):
    """The one-line message for a file with fewer data bytes than its header declares."""
    return (f"{name}: truncated data: shape {shape} of {dtype} needs {expected} bytes after "
            f"the header, found {found}")


class _PlainStream:
    """An uncompressed IDX file whose first bytes ``head`` were already read."""

    def __init__(self, file, size, head, name):
        self._file, self._size, self._head, self._name = file, size, head, name

    def read(self, size):
        """Return the next ``size`` bytes (a few, for the header), fewer at the end of the file."""
        head, self._head = self._head[:size], self._head[size:]
        return head + self._file.read(size - len(head))

    def check_capacity(self, header_bytes, expected, shape, dtype):
        """Compare the declared data size with the file's size, before reading any data."""
        found = self._size - header_bytes
        if found < expected:
            raise DataError(_truncated(self._name, shape, dtype, expected, found))
        if found > expected:
            raise DataError(f"{self._name}: trailing bytes: {found - expected} after the "
                            f"{expected} data bytes that shape {shape} of {dtype} needs")

    def readinto(self, out):
        """Fill the writable byte memoryview ``out`` from the file; return how many bytes came."""
        filled = 0
        while filled < len(out):
            n = self._file.readinto(out[filled:])  # straight into the array: no copy
            if not n:
                break
            filled += n
        return filled

    def check_end(self, expected, shape, dtype):
        """Nothing to check: the file's size was compared with the header before reading."""


def _gzip_input_bound(data_bytes):
    """Most compressed bytes any sensible gzip file of ``data_bytes`` needs (stored blocks cost
    5 bytes per 64 KiB; the rest covers headers, file names and padding)."""
    return data_bytes + data_bytes // 1024 + (1 << 20)


class _GzipStream:
    """Inflates a gzip file (one member or several) on demand, never more than asked for.

    Reads at most ``size`` bytes (the file's size when opened) and feeds zlib growing slices, so
    that neither many tiny members nor a long stream costs more than linear time.
    """

    def __init__(self, file, size, head, name):
        self._file, self._name = file, name
        self._left = size - len(head)  # file bytes not read yet
        self._size = size
        self._buf, self._pos = head, 0  # compressed bytes read, and how many were fed to zlib
        self._inflater = zlib.decompressobj(_GZIP_WBITS)
        self._step = _FIRST_STEP
        self._ended = False
        self._pending = memoryview(b"")  # inflated bytes not handed out yet
        self._members, self._produced = 1, 0

    def read(self, size):
        """Return the next ``size`` inflated bytes, fewer at the end of the stream."""
        buffer = bytearray(size)
        return bytes(buffer[: self.readinto(memoryview(buffer))])

    def check_capacity(self, header_bytes, expected, shape, dtype):
        """Refuse a declared size the compressed bytes cannot hold, or a file far too large."""
        needed = header_bytes + expected
        if needed > self._size * _MAX_DEFLATE_RATIO:
            raise DataError(
                f"{self._name}: truncated data: shape {shape} of {dtype} needs {expected} bytes "
                f"after the header; a {self._size}-byte gzip file cannot hold that many"
            )
        if self._size > _gzip_input_bound(needed):
            raise DataError(
                f"{self._name}: a {self._size}-byte gzip file for {expected} data bytes (shape "
                f"{shape} of {dtype}): far more compressed bytes than that data needs"
            )
        # The last member's trailer holds its size mod 2**32; if that alone is more than the
        # header declares, the file has trailing data or a damaged trailer: an error either way.
        # Checked for large files only, where it saves inflating up to max_bytes; small ones are
        # inflated, which says more precisely what is wrong.
        if needed < _TRAILER_CHECK:
            return
        position = self._file.tell()
        self._file.seek(self._size - 4)
        last_size = int.from_bytes(self._file.read(4), "little")
        self._file.seek(position)
        if needed < last_size:
            raise DataError(
                f"{self._name}: trailing bytes or corrupt gzip data: the last gzip member's "
                f"trailer gives {last_size} bytes, more than the {needed} that the header and "
                f"shape {shape} of {dtype} need"
            )

    def readinto(self, out):
        """Fill the writable byte memoryview ``out``; return how many bytes were there."""
        filled = 0
        while filled < len(out):
            if not self._pending:
                self._pending = memoryview(self._inflate(min(len(out) - filled, _OUT_PIECE)))
                if not self._pending:
                    break
            n = min(len(out) - filled, len(self._pending))
            out[filled : filled + n] = self._pending[:n]
            self._pending = self._pending[n:]
            filled += n
        return filled

    def check_end(self, expected, shape, dtype):
        """Check that the gzip data ends here (inflating at most one more byte) and its CRCs."""
        if self._pending or self._inflate(1):
            raise DataError(
                f"{self._name}: trailing bytes: the gzip data holds more than the {expected} data "
                f"bytes that shape {shape} of {dtype} needs"
            )

    def _inflate(self, limit):
        """Return 1 to ``limit`` inflated bytes, or b"" at the end of the gzip data."""
        while not self._ended:
            if self._inflater.eof:
                self._next_member()
                continue
            if self._pos == len(self._buf) and not self._refill():
                out = self._call(b"", limit)  # zlib may still hold output for an empty input
                if out:
                    self._produced += len(out)
                    return out
                if self._inflater.eof:
                    continue
                raise DataError(
                    f"{self._name}: corrupt gzip data: the compressed stream ends early"
                )
            piece = memoryview(self._buf)[self._pos : self._pos + self._step]
            out = self._call(piece, limit)
            inflater = self._inflater  # after a member's end, unused_data holds what follows it
            left = inflater.unused_data if inflater.eof else inflater.unconsumed_tail
            used = len(piece) - len(left)
            self._pos += used
            if used == len(piece):
                self._step = min(2 * self._step, _CHUNK)
            if out:
                self._produced += len(out)
                return out
        return b""

    def _call(self, piece, limit):
        try:
            return self._inflater.decompress(piece, limit)
        except zlib.error as error:
            raise DataError(f"{self._name}: corrupt gzip data ({error})") from None

    def _refill(self):
        """Append the file's next chunk to the unfed bytes; False at the end of the file."""
        if self._left <= 0:
            return False
        chunk = self._file.read(min(_CHUNK, self._left))
        self._left = self._left - len(chunk) if chunk else 0
        self._buf, self._pos = self._buf[self._pos :] + chunk, 0
        return bool(chunk)

    def _next_member(self):
        """After a member's end: start the next member, accept zero padding, or refuse junk."""
        while len(self._buf) - self._pos < 2 and self._refill():
            pass
        if self._buf[self._pos : self._pos + 2] == _GZIP_MAGIC:
            self._members += 1
            # Tools that write many members (bgzip) put up to 64 KiB of data in each.
            if self._members > _MAX_MEMBERS + self._produced // (1 << 16):
                raise DataError(
                    f"{self._name}: corrupt gzip data: more than {self._members - 1} gzip members "
                    f"for {self._produced} bytes of data"
                )
            self._inflater = zlib.decompressobj(_GZIP_WBITS)
            self._step = _FIRST_STEP
            return
        rest = self._buf[self._pos :]
        stray = len(rest) + self._left
        while True:  # like gzip(1), accept zero padding after the last member
            if rest.count(0) != len(rest):
                raise DataError(
                    f"{self._name}: corrupt gzip data: {stray} stray bytes after the gzip stream"
                )
            self._pos = len(self._buf)
            if not self._refill():
                break
            rest = self._buf
        self._ended = True
