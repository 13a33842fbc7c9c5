"""Safe reader for ``.npz`` archives: jitnet's model files and checkpoints.

``np.load`` trusts the archive: it allocates whatever a member's header declares, inflates deflate
data without a bound, and lets damaged input escape as TypeError, OverflowError, MemoryError,
zlib.error or NotImplementedError. This reader checks everything the archive declares -- the zip
directory's sizes, compression method and flags, each member's ``.npy`` header (parsed here,
never evaluated) -- against the file before it allocates or inflates anything, then inflates
each member only up to its declared size and checks its CRC-32. Every problem raises the
caller's error class once, with one line naming the file.

There is no fixed size limit: each claim is checked against the bytes that back it. A stored
member's data must lie inside the file; a deflate member cannot declare more than
:data:`DEFLATE_RATIO` times its compressed bytes; members may not overlap. So the arrays of a
file of F bytes need at most F bytes of memory if stored, and at most 1032 F if deflated.

Members are plain ``.npy`` arrays of booleans, integers, floats, complex numbers or fixed-width
strings (``U``, ``S``) of at most 32 dimensions, stored or deflate-compressed: what ``np.savez``
and ``np.savez_compressed`` write. Object arrays (pickles) are never loaded.
"""

import errno
import math
import os
import struct
import sys
import zipfile
import zlib
from typing import NamedTuple

import numpy as np

from jitnet.io.atomic import display_path, open_regular
from jitnet.io.npy import NPY_MAGIC, ArrayHeader, read_npy_header
from jitnet.io.errors import DataError

__all__ = ["ArrayHeader", "NpzArchive", "read_npz"]

#: Deflate cannot expand data by more than this (258-byte matches at under 2 bits each).
DEFLATE_RATIO = 1032
_MAX_MEMBERS = 10_000
_MAX_DIRECTORY = 1 << 22  # bytes of the zip directory; 10,000 entries need about 1 MB
_IN_CHUNK = 1 << 18  # compressed bytes read at a time
_OUT_CHUNK = 1 << 20  # bytes inflated or copied at a time
_LOCAL_HEADER = struct.Struct("<4s5H3I2H")  # zip local file header: 30 bytes
_ENCRYPTED, _STRONG_ENCRYPTION = 0x1, 0x40
_METHODS = {0: "stored", 8: "deflate", 12: "bzip2", 14: "lzma", 93: "zstd", 99: "AES"}


class _Member(NamedTuple):
    header: ArrayHeader
    info: zipfile.ZipInfo
    data_offset: int  # file offset of the member's (compressed) bytes
    prefix: int  # bytes of magic, version and header before the array's data


class _Oversized(Exception):
    """A read that only a damaged zip directory asks for (raised through zipfile)."""


def read_npz(path, error_cls=DataError, *, what=None):
    """Read every array of an ``.npz`` archive, checking all it declares before reading data.

    Parameters
    ----------
    path : str or os.PathLike
        A regular file written by ``np.savez`` or ``np.savez_compressed`` (or anything that
        writes the same zip of ``.npy`` members).
    error_cls : type, optional
        The exception raised for every problem with the file (default `DataError`), e.g.
        ``ModelFileError``; it is called with one string.
    what : str, optional
        Put before the path in messages, e.g. ``"checkpoint"`` gives ``"checkpoint PATH: ..."``.

    Returns
    -------
    dict of str to numpy.ndarray
        Member names without ``.npy``, in archive order; arrays with the stored shape, dtype
        (byte order included) and memory order, as ``np.load`` returns them.

    Raises
    ------
    error_cls
        One line starting with ``what`` and the path: the path is invalid, missing or not a
        regular file; the file is a plain ``.npy`` or not a zip archive; a member is encrypted,
        compressed with another method than stored or deflate, not an ``.npy`` array, a
        duplicate, of an unsupported dtype or more than 32 dimensions, larger than its bytes in
        the file can hold, overlapping another, inconsistent with the zip directory,
        truncated, or damaged (CRC-32).
    """
    with NpzArchive(path, error_cls, what=what) as archive:
        return archive.read_all()


class NpzArchive:
    """An open ``.npz`` archive whose directory and ``.npy`` headers have all been checked.

    Parameters are those of `read_npz`. Use as a context manager; ``headers`` maps each name to
    its `ArrayHeader`; `read` reads one array, so that a caller can read small arrays (sizes,
    format) first and check the large ones' headers against them before reading those.
    """

    def __init__(self, path, error_cls=DataError, *, what=None):
        self._error_cls = error_cls
        self.where = display_path(os.fspath(path))
        if what:
            self.where = f"{what} {self.where}"
        self._file, self._size = open_regular(path, error_cls, what)
        try:
            self._members = self._open()
        except OSError as error:
            self._file.close()
            raise self.error(f"cannot read ({error.strerror or error})") from None
        except BaseException:
            self._file.close()
            raise
        self.headers = {name: member.header for name, member in self._members.items()}

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    def close(self):
        self._file.close()

    def error(self, problem):
        """The caller's exception for ``problem``, naming the file: ``raise archive.error(...)``."""
        return self._error_cls(f"{self.where}: {problem}")

    def read_all(self):
        """Every array, as a dict in archive order."""
        return {name: self.read(name) for name in self._members}

    def read(self, name):
        """Read one array (KeyError if the archive has no such name; see ``headers``)."""
        member = self._members[name]
        header = member.header
        order = "F" if header.fortran_order else "C"
        array = np.empty(header.shape, header.dtype, order=order)
        flat = (array.T if header.fortran_order else array).reshape(-1)  # a view, in file order
        try:
            reader = _MemberReader(self._file, member, self._fail_member(name))
            reader.skip(member.prefix)
            found = reader.readinto(memoryview(flat.view(np.uint8)))
            if found < header.nbytes:
                raise self.error(
                    f"array {name!r}: truncated: {found} of its {header.nbytes} data bytes"
                )
            reader.finish()
        except OSError as error:
            raise self.error(f"cannot read ({error.strerror or error})") from None
        if header.dtype.kind == "b":
            np.not_equal(flat.view(np.uint8), 0, out=flat)  # any non-zero byte means True
        elif header.dtype.kind == "U" and flat.size:
            codes = flat.view(np.dtype(np.uint32).newbyteorder(header.dtype.byteorder))
            if codes.max() > 0x10FFFF:
                raise self.error(f"array {name!r}: holds characters beyond Unicode")
        return array

    def _fail_member(self, name):
        def fail(problem):
            raise self.error(f"array {name!r}: {problem}") from None  # one error, not a chain

        return fail

    def _open(self):
        """Check the zip directory and every member's header; return {name: _Member}."""
        head = self._file.read(len(NPY_MAGIC))
        if head == NPY_MAGIC:
            raise self.error("a single .npy array, not an .npz archive")
        if head[:4] not in (b"PK\x03\x04", b"PK\x05\x06"):  # a member, or an empty archive
            raise self.error(f"not an .npz archive (it starts with bytes 0x{head[:4].hex()})")
        infos = self._directory()
        if len(infos) > _MAX_MEMBERS:
            raise self.error(f"{len(infos)} members, more than the {_MAX_MEMBERS} read")
        members = {}
        for info in infos:
            name = info.filename[:-4] if info.filename.endswith(".npy") else None
            if name is None:
                raise self.error(f"member {info.filename!r} is not an .npy array")
            if name in members:
                raise self.error(f"two members named {info.filename!r}")
            members[name] = self._member(info, self._fail_member(name))
        # Members that share bytes would let one file's bytes back many arrays.
        spans = sorted((m.info.header_offset, m.data_offset + m.info.compress_size, name)
                       for name, m in members.items())
        for (_, end, name), (start, _, other) in zip(spans, spans[1:]):
            if start < end:
                raise self.error(f"arrays {name!r} and {other!r} overlap in the file")
        return members

    def _directory(self):
        """The zip directory's entries, read by zipfile through bounded reads."""
        try:
            with zipfile.ZipFile(_BoundedFile(self._file, self._size)) as archive:
                return archive.infolist()
        except _Oversized as error:
            problem = f"not a readable .npz archive (a {error}-byte zip directory)"
            raise self.error(problem) from None
        except OSError as error:
            if error.errno not in (errno.EINVAL, None):
                raise self.error(f"cannot read ({error.strerror or error})") from None
            raise self.error(f"not an .npz archive (damaged zip directory: {error})") from None
        # zipfile parses untrusted bytes and documents only BadZipFile; damaged directories also
        # surface as ValueError, struct.error, IndexError, etc. All of them mean "not a zip".
        except Exception as error:  # noqa: BLE001
            text = str(error).strip().splitlines()
            raise self.error(
                f"not an .npz archive ({text[0] if text else type(error).__name__})"
            ) from None

    def _member(self, info, fail):
        """Check one member's zip entry and .npy header against the file."""
        if info.flag_bits & (_ENCRYPTED | _STRONG_ENCRYPTION):
            fail("encrypted; only plain archives are read")
        method = info.compress_type
        if method not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            fail(f"compression method {method} ({_METHODS.get(method, 'unknown')}) is not "
                 f"supported; only stored and deflate are")
        size, packed = info.file_size, info.compress_size
        if method == zipfile.ZIP_STORED and packed != size:
            fail(f"stored, but the zip directory gives {packed} bytes for {size}")
        if method == zipfile.ZIP_DEFLATED and size > packed * DEFLATE_RATIO:
            fail(f"declares {size} bytes, more than its {packed} compressed bytes can hold")
        if method == zipfile.ZIP_DEFLATED and packed > size + size // 1024 + 1024:
            fail(f"{packed} compressed bytes for {size} bytes of data")
        if not 0 <= info.header_offset <= self._size - _LOCAL_HEADER.size:
            fail(f"damaged: the zip directory places it at byte {info.header_offset} of "
                 f"{self._size}")
        self._file.seek(info.header_offset)
        local = _LOCAL_HEADER.unpack(self._file.read(_LOCAL_HEADER.size))
        if local[0] != b"PK\x03\x04":
            fail("damaged (no zip entry where the directory points)")
        local_name = self._file.read(local[9])
        try:  # as zipfile does: bit 11 of the flags says UTF-8
            local_name = local_name.decode("utf-8" if local[2] & 0x800 else "cp437")
        except UnicodeDecodeError:
            local_name = None
        if local_name != info.orig_filename:
            fail("damaged: its zip entry and the zip directory give different names")
        data_offset = info.header_offset + _LOCAL_HEADER.size + local[9] + local[10]
        if data_offset + packed > self._size:
            fail(f"truncated: its {packed} bytes would end past the file's {self._size}")
        member = _Member(None, info, data_offset, 0)
        reader = _MemberReader(self._file, member, fail)
        header, prefix = read_npy_header(reader, fail)
        storage = math.prod(max(n, 1) for n in header.shape) * header.dtype.itemsize
        if storage > sys.maxsize:  # numpy cannot build such a shape, even empty
            fail(f"shape {header.shape} of {header.dtype} is {storage} bytes, over the "
                 f"{sys.maxsize} any array can hold")
        if size - prefix != header.nbytes:
            fail(f"shape {header.shape} of {header.dtype} needs {header.nbytes} data bytes, "
                 f"the zip directory gives {size - prefix}")
        return _Member(header, info, data_offset, prefix)


class _BoundedFile:
    """The seek/tell/read that zipfile uses, with reads clipped to the file's size and a read
    larger than any sane zip directory refused instead of allocated."""

    def __init__(self, file, size):
        self._file, self._size, self._pos = file, size, 0

    def seekable(self):
        return True

    def tell(self):
        return self._pos

    def seek(self, offset, whence=0):
        position = offset + (0, self._pos, self._size)[whence]
        if position < 0:
            raise OSError(errno.EINVAL, "negative seek position")
        self._pos = position
        return position

    def read(self, n=-1):
        left = max(0, self._size - self._pos)
        n = left if n is None or n < 0 else min(n, left)
        if n > _MAX_DIRECTORY:
            raise _Oversized(n)
        self._file.seek(self._pos)
        data = self._file.read(n)
        self._pos += len(data)
        return data


class _MemberReader:
    """A member's uncompressed bytes: inflated (if deflate) only as far as asked, CRC-checked."""

    def __init__(self, file, member, fail):
        info = member.info
        self._file, self._fail = file, fail
        self._offset, self._packed = member.data_offset, info.compress_size  # unread input
        self._left = info.file_size  # output not produced yet
        self._deflate = info.compress_type == zipfile.ZIP_DEFLATED
        self._inflater = zlib.decompressobj(-zlib.MAX_WBITS) if self._deflate else None
        self._tail = b""  # compressed input read but not yet consumed
        self._crc, self._expected_crc = 0, info.CRC

    def read(self, n):
        """Up to ``n`` bytes (a header's few), fewer at the member's end."""
        buffer = bytearray(n)
        return bytes(buffer[: self.readinto(memoryview(buffer))])

    def skip(self, n):
        """Pass over ``n`` bytes (the .npy header), still counting them in the CRC."""
        self.read(n)

    def readinto(self, out):
        """Fill the byte memoryview ``out`` as far as the member goes; return the count."""
        filled = 0
        while filled < len(out) and self._left:
            want = min(len(out) - filled, self._left, _OUT_CHUNK)
            piece = out[filled : filled + want]
            n = self._inflate_into(piece) if self._deflate else self._read_into(piece)
            if not n:
                break
            self._crc = zlib.crc32(piece[:n], self._crc)
            self._left -= n
            filled += n
        return filled

    def finish(self):
        """Check that the member ends exactly here and that its CRC-32 matches."""
        if self._deflate:
            while not self._inflater.eof:  # the end-of-stream marker may follow the last byte
                if self._inflate(1):
                    self._fail("damaged: the deflate data holds more bytes than declared")
                if not self._inflater.eof and not self._tail and not self._packed:
                    self._fail("damaged: the deflate data ends early")
            if self._inflater.unused_data or self._packed:
                self._fail("damaged: bytes after the end of the deflate data")
        if self._crc != self._expected_crc:
            self._fail("damaged: CRC-32 mismatch")

    def _read_into(self, out):
        n = min(len(out), self._packed)
        self._file.seek(self._offset)
        got = self._file.readinto(out[:n])
        self._offset += got
        self._packed -= got
        return got

    def _inflate_into(self, out):
        data = self._inflate(len(out))
        out[: len(data)] = data
        return len(data)

    def _inflate(self, limit):
        """Up to ``limit`` inflated bytes; b"" when the stream has ended or its input ran out."""
        while not self._inflater.eof:
            if not self._tail and self._packed:
                self._file.seek(self._offset)
                self._tail = self._file.read(min(_IN_CHUNK, self._packed))
                if not self._tail:
                    self._fail("truncated: the file ends inside its compressed data")
                self._offset += len(self._tail)
                self._packed -= len(self._tail)
            try:
                out = self._inflater.decompress(self._tail, limit)
            except zlib.error as error:
                self._fail(f"damaged deflate data ({error})")
            self._tail = self._inflater.unconsumed_tail
            if out:
                return out
            if not self._tail and not self._packed:
                return b""
        return b""
