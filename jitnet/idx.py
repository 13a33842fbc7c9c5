"""Strict reader and writer for IDX files, the format MNIST ships in, plain or gzip-compressed.

An IDX file is a 4-byte magic number -- two zero bytes, a type code, the number of dimensions --
then one big-endian int32 size per dimension, then the array's elements, big-endian, row-major:

    00 00 <type> <ndim> | <size 0> ... <size ndim-1> | <data>

Type codes: 0x08 unsigned byte, 0x09 signed byte, 0x0B int16, 0x0C int32, 0x0D float32,
0x0E float64. Anything that does not match the header exactly -- wrong magic, unknown type code,
no dimensions, too few or too many data bytes, a damaged gzip stream -- raises `DataError` with the
file's path and what is wrong, in one line.
"""

import gzip
import math
import os
import stat
import sys
import zlib

import numpy as np

from jitnet._atomic import atomic_write_bytes

__all__ = ["DataError", "read_idx", "write_idx"]

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

_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_WBITS = 16 + zlib.MAX_WBITS  # zlib parses the gzip header and checks CRC-32 and length
_CHUNK = 1 << 18  # compressed bytes inflated per step; keeps each output piece cache-sized
# Deflate cannot expand data by more than about 1032:1; a header promising more than that is
# truncated whatever the stream holds, and must not make us allocate its claimed size.
_MAX_DEFLATE_RATIO = 1032
_MAX_DIM = 2**31 - 1


class DataError(ValueError):
    """A data file (or an array handed in as data) is missing, malformed or inconsistent.

    The message names the file and says what is wrong, in one line.
    """


def read_idx(path):
    """Read an IDX file, plain or gzip-compressed, into a NumPy array.

    Compression is detected from the content (the gzip magic bytes), not from the name.

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.

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
        The file is missing or unreadable, is not IDX (wrong magic), has an unknown type code,
        declares zero dimensions or a negative size, holds fewer or more data bytes than its
        header declares, or is a damaged gzip stream. The message starts with the path.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as file:
            magic = file.read(2)
            if magic == _GZIP_MAGIC:
                raw = magic + file.read()
                stream = _ByteStream(_gunzip_chunks(raw, name))
                bound = len(raw) * _MAX_DEFLATE_RATIO
            else:
                stream = _FileStream(file, magic)
                status = os.fstat(file.fileno())
                bound = status.st_size if stat.S_ISREG(status.st_mode) else math.inf
            return _parse(stream, bound, name)
    except FileNotFoundError:
        raise DataError(f"{name}: no such file") from None
    except OSError as error:
        raise DataError(f"{name}: cannot read ({error.strerror or error})") from None


def write_idx(path, array):
    """Write an array to an IDX file; gzip-compressed when the name ends in ``.gz``.

    The write is atomic: a reader sees either the old file or the complete new one.
    ``read_idx(path)`` returns an array equal to ``array`` in shape, dtype and every bit.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; missing parent directories are created.
    array : array_like
        Any shape with at least one dimension, each size below 2**31; dtype uint8 (0x08),
        int8 (0x09), int16 (0x0B), int32 (0x0C), float32 (0x0D) or float64 (0x0E), in either
        byte order.

    Raises
    ------
    DataError
        The dtype has no IDX type code (convert first, e.g. ``array.astype(np.int32)``), the array
        is 0-d, or a dimension is too large for the header.
    OSError
        The file cannot be written.
    """
    name = os.fspath(path)
    array = np.asarray(array)
    code = _CODE_OF_KIND.get((array.dtype.kind, array.dtype.itemsize))
    if code is None:
        raise DataError(
            f"{name}: cannot write dtype {array.dtype} as IDX; supported: uint8, int8, int16, "
            f"int32, float32, float64 (convert first, e.g. array.astype(np.int32))"
        )
    if array.ndim == 0:
        raise DataError(f"{name}: cannot write a 0-d array as IDX; it needs at least one dimension")
    if max(array.shape) > _MAX_DIM:
        raise DataError(f"{name}: shape {array.shape} does not fit IDX's 32-bit sizes")
    big_endian = _DTYPE_OF_CODE[code].newbyteorder(">")
    payload = b"".join(
        [
            bytes([0, 0, code, array.ndim]),
            np.asarray(array.shape, dtype=">i4").tobytes(),
            array.astype(big_endian, copy=False).tobytes(order="C"),
        ]
    )
    if name.lower().endswith(".gz"):
        # mtime=0: the same array always gives the same bytes
        payload = gzip.compress(payload, compresslevel=6, mtime=0)
    atomic_write_bytes(name, payload)


def _parse(stream, bound, name):
    """Check the IDX header in ``stream``, then read its data (at most ``bound`` bytes)."""
    head = stream.read(4)
    if len(head) < 4:
        raise DataError(f"{name}: not an IDX file: {len(head)} bytes long, a header needs 4")
    if head[:2] != b"\0\0":
        raise DataError(
            f"{name}: not an IDX file: it starts with bytes 0x{head[:2].hex()}, expected 0x0000"
        )
    code, ndim = head[2], head[3]
    dtype = _DTYPE_OF_CODE.get(code)
    if dtype is None:
        raise DataError(f"{name}: unknown IDX type code 0x{code:02X} (known: {_KNOWN_CODES})")
    if ndim == 0:
        raise DataError(f"{name}: IDX header declares zero dimensions")
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise DataError(
            f"{name}: truncated IDX header: {ndim} dimension sizes need {4 * ndim} bytes, "
            f"found {len(sizes)}"
        )
    shape = tuple(int(size) for size in np.frombuffer(sizes, dtype=">i4"))
    if min(shape) < 0:
        raise DataError(f"{name}: IDX header declares a negative size in shape {shape}")
    count = math.prod(shape)
    expected = count * dtype.itemsize

    if expected > bound:
        found = stream.skip_rest()
        raise DataError(_truncated(name, shape, dtype, expected, found))
    data = np.empty(count, dtype=dtype)
    found = stream.readinto(memoryview(data.view(np.uint8)))
    if found < expected:
        raise DataError(_truncated(name, shape, dtype, expected, found))
    trailing = stream.skip_rest()  # also drains a gzip stream to its end, which checks its CRC
    if trailing:
        raise DataError(
            f"{name}: trailing bytes: {trailing} after the {expected} data bytes that shape "
            f"{shape} of {dtype} needs"
        )
    if dtype.itemsize > 1 and sys.byteorder == "little":
        data.byteswap(inplace=True)  # the file's bytes are big-endian
    return data.reshape(shape)


def _truncated(name, shape, dtype, expected, found):
    """The one-line message for a file with fewer data bytes than its header declares."""
    return (
        f"{name}: truncated data: shape {shape} of {dtype} needs {expected} bytes after the "
        f"header, found {found}"
    )


def _gunzip_chunks(raw, name):
    """Yield the inflated contents of the gzip data ``raw`` (one member or several), in pieces."""
    view = memoryview(raw)
    start = 0
    while True:
        inflater = zlib.decompressobj(_GZIP_WBITS)
        position = start
        while not inflater.eof:
            if position >= len(raw):
                raise DataError(f"{name}: corrupt gzip data: the compressed stream ends early")
            piece = view[position : position + _CHUNK]
            position += len(piece)
            try:
                out = inflater.decompress(piece)
            except zlib.error as error:
                raise DataError(f"{name}: corrupt gzip data ({error})") from None
            if out:
                yield out
        start = position - len(inflater.unused_data)
        rest = len(raw) - start
        # Like gzip(1), accept zero padding after the last member.
        if raw.count(b"\0", start) == rest:
            return
        if raw[start : start + 2] != _GZIP_MAGIC:
            raise DataError(f"{name}: corrupt gzip data: {rest} stray bytes after the gzip stream")


class _ByteStream:
    """Hands out the bytes of an iterator of chunks, a few at a time or straight into a buffer."""

    def __init__(self, chunks):
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readinto(self, out):
        """Fill the writable byte memoryview ``out``; return how many bytes were there."""
        filled = 0
        while filled < len(out):
            if not self._pending:
                chunk = next(self._chunks, None)
                if chunk is None:
                    break
                self._pending = memoryview(chunk)
                continue
            n = min(len(out) - filled, len(self._pending))
            out[filled : filled + n] = self._pending[:n]
            self._pending = self._pending[n:]
            filled += n
        return filled

    def read(self, size):
        """Return the next ``size`` bytes, fewer at the end of the stream."""
        buffer = bytearray(size)
        return bytes(buffer[: self.readinto(memoryview(buffer))])

    def skip_rest(self):
        """Consume the rest of the stream; return how many bytes it held."""
        n = len(self._pending)
        self._pending = memoryview(b"")
        for chunk in self._chunks:
            n += len(chunk)
        return n


class _FileStream(_ByteStream):
    """A plain file whose first bytes ``head`` were already read."""

    def __init__(self, file, head):
        super().__init__(iter([head]))
        self._file = file

    def readinto(self, out):
        """Fill the writable byte memoryview ``out``; return how many bytes were there."""
        filled = super().readinto(out)
        while filled < len(out):
            n = self._file.readinto(out[filled:])  # straight into the array: no copy
            if not n:
                break
            filled += n
        return filled

    def skip_rest(self):
        """Consume the rest of the file; return how many bytes it held."""
        n = super().skip_rest()
        while chunk := self._file.read(_CHUNK):
            n += len(chunk)
        return n
