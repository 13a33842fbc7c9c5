"""Property tests for the two file readers: build a valid IDX file or .npz archive, damage it, and
check that the reader gives the documented error (one line, naming the file) or exactly what the
damaged bytes encode -- decoded independently here, or by np.load for archives.

JITNET_PROPERTY_EXAMPLES=5000 runs more examples per test (default 150, a few seconds).
"""

import gzip
import io
import math
import os
import struct
import warnings
import zipfile
import zlib

import numpy as np
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from jitnet.data.idx import DataError, read_idx, write_idx
from jitnet.io.npzfile import read_npz

SETTINGS = settings(
    max_examples=int(os.environ.get("JITNET_PROPERTY_EXAMPLES", 150)),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


class ModelError(ValueError):
    """Stands for a caller's error class."""


def assert_one_line_error(error, path, cls):
    assert type(error) is cls
    message = str(error)
    assert message.startswith(str(path)) and "\n" not in message, message
    assert error.__cause__ is None


# ---- IDX ----


@st.composite
def idx_files(draw):
    """(file bytes, array) for a valid IDX file, plain or gzip (sometimes in two members)."""
    code = draw(st.sampled_from(sorted(IDX_DTYPES)))
    dtype = np.dtype(IDX_DTYPES[code])
    shape = tuple(draw(st.lists(st.integers(0, 5), min_size=1, max_size=4)))
    data = draw(st.binary(min_size=math.prod(shape) * dtype.itemsize,
                          max_size=math.prod(shape) * dtype.itemsize))
    raw = bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}i", *shape) + data
    array = np.frombuffer(data, dtype).reshape(shape)
    compression = draw(st.sampled_from(["plain", "gzip", "two-members"]))
    if compression == "gzip":
        raw = gzip.compress(raw, compresslevel=draw(st.integers(0, 9)), mtime=0)
    elif compression == "two-members":
        cut = draw(st.integers(0, len(raw)))
        raw = gzip.compress(raw[:cut], mtime=0) + gzip.compress(raw[cut:], mtime=0)
    return raw, array


def damage(draw, raw, header_size):
    """``raw`` truncated, with bytes flipped, header fields rewritten or bytes added."""
    kind = draw(st.sampled_from(["none", "truncate", "flip", "field", "append", "insert"]))
    raw = bytearray(raw)
    if kind == "truncate":
        del raw[draw(st.integers(0, max(0, len(raw) - 1))):]
    elif kind == "flip" and raw:
        for _ in range(draw(st.integers(1, 3))):
            raw[draw(st.integers(0, len(raw) - 1))] ^= draw(st.integers(1, 255))
    elif kind == "field" and len(raw) >= 4:
        at = draw(st.integers(0, min(len(raw), header_size) - 1))
        value = draw(st.sampled_from([0, 1, 0x7F, 0xFF, 2**31 - 1, 2**32 - 1, 2**16]))
        raw[at : at + 4] = value.to_bytes(4, "big")[-len(raw[at : at + 4]) :]
    elif kind in ("append", "insert"):
        junk = draw(st.sampled_from([b"\0", b"\0" * 9, b"\x1f\x8b", b"junk", gzip.compress(b"")]))
        at = len(raw) if kind == "append" else draw(st.integers(0, len(raw)))
        raw[at:at] = junk
    return kind, bytes(raw)


def decode_idx(raw):
    """What ``raw`` encodes as an IDX file (gzip by Python's gzip module), or None if invalid."""
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error):
            return None
    if len(raw) < 4 or raw[:2] != b"\0\0" or raw[2] not in IDX_DTYPES or not 1 <= raw[3] <= 32:
        return None
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        return None
    shape = struct.unpack(f">{ndim}i", raw[4 : 4 + 4 * ndim])
    dtype = np.dtype(IDX_DTYPES[raw[2]])
    if min(shape) < 0 or len(raw) - 4 - 4 * ndim != math.prod(shape) * dtype.itemsize:
        return None
    if math.prod(max(size, 1) for size in shape) * dtype.itemsize > 2**40:
        return None  # an empty array with other sizes numpy cannot build
    return np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(shape)


@st.composite
def damaged_idx_files(draw):
    raw, array = draw(idx_files())
    kind, raw = damage(draw, raw, 4 + 4 * array.ndim if raw[:2] == b"\0\0" else 24)
    return kind, raw, array


def assert_same_array(got, expected):
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype.newbyteorder("=") and got.dtype.isnative
    assert got.tobytes() == expected.astype(got.dtype).tobytes()


@SETTINGS
@given(case=damaged_idx_files())
@example(case=("field", bytes.fromhex("0000 0841") + bytes(4 * 65), np.zeros(0)))  # 65 dims
@example(case=("field", bytes.fromhex("0000 0e03 00000000 7fffffff 7fffffff"), np.zeros(0)))
def test_idx_reader_gives_the_error_or_what_the_bytes_encode(tmp_path, case):
    kind, raw, written = case
    path = tmp_path / "file.idx"
    path.write_bytes(raw)
    expected = decode_idx(raw)
    try:
        got = read_idx(path)
    except DataError as error:
        assert_one_line_error(error, path, DataError)
        assert kind != "none", "an undamaged file must read"
        return
    assert expected is not None, "read a file that encodes no array"
    assert_same_array(got, expected)
    if kind == "none":
        assert_same_array(got, written)


WRITABLE = {np.dtype(t) for t in IDX_DTYPES.values()}


@SETTINGS
@given(data=st.data())
def test_write_idx_round_trips_or_refuses_leaving_no_temporary_file(tmp_path, data):
    dtype = np.dtype(data.draw(st.sampled_from(["u1", "i1", "<i2", ">i4", "f4", ">f8", "i8", "u2",
                                                "c8", "?", "U2"])))
    shape = data.draw(hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=4))
    array = data.draw(hnp.arrays(dtype, shape))
    name = data.draw(st.sampled_from(["a.idx", "a.idx.gz"]))
    for stale in tmp_path.iterdir():
        stale.unlink()
    writable = array.ndim > 0 and dtype.newbyteorder(">") in WRITABLE
    try:
        write_idx(tmp_path / name, array)
    except DataError as error:
        assert_one_line_error(error, tmp_path / name, DataError)
        assert not writable
        assert list(tmp_path.iterdir()) == []
        return
    assert writable
    assert [p.name for p in tmp_path.iterdir()] == [name]
    assert_same_array(read_idx(tmp_path / name), array)


# ---- .npz ----

NPZ_DTYPES = ["?", "u1", "i1", "<i2", ">u2", "<i4", "<u4", ">i8", "<u8", "<f2", "<f4", ">f8",
              "<c8", "<c16", "<U3", ">U1", "S4"]


@st.composite
def npz_archives(draw):
    """(archive bytes, {name: array}) as np.savez or np.savez_compressed writes them."""
    names = draw(st.lists(st.sampled_from(["W0", "b0", "sizes", "format", "x.y", "état"]),
                          min_size=0, max_size=4, unique=True))
    arrays = {}
    for name in names:
        dtype = draw(st.sampled_from(NPZ_DTYPES))
        shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
        array = draw(hnp.arrays(dtype, shape))
        arrays[name] = np.asfortranarray(array) if draw(st.booleans()) else array
    buffer = io.BytesIO()
    (np.savez_compressed if draw(st.booleans()) else np.savez)(buffer, **arrays)
    return buffer.getvalue(), arrays


HEADER_REWRITES = ["(99999999999999999999,)", "(0, 9223372036854775807)", "(4294967296, 8)",
                   "'|O'", "'<f99'", "[('a', '<f8')]", "(((((", "(1,) * 40", "'<U0'", "True"]


@st.composite
def damaged_archives(draw):
    raw, arrays = draw(npz_archives())
    kind = draw(st.sampled_from(["none", "bytes", "method", "flags", "extra", "header"]))
    if kind == "bytes":
        _, raw = damage(draw, raw, len(raw))
    elif kind in ("method", "flags"):  # a local header's or the directory's field
        raw = bytearray(raw)
        signature = draw(st.sampled_from([b"PK\x03\x04", b"PK\x01\x02"]))
        starts = [i for i in range(len(raw)) if raw.startswith(signature, i)]
        assume(starts)
        at = draw(st.sampled_from(starts)) + {b"PK\x03\x04": 6, b"PK\x01\x02": 8}[signature]
        at += 2 if kind == "method" else 0
        value = draw(st.sampled_from([1, 9, 12, 14, 93, 99, 0xFFFF] if kind == "method"
                                     else [0x1, 0x8, 0x40, 0x800, 0xFFFF]))
        raw[at : at + 2] = value.to_bytes(2, "little")
        raw = bytes(raw)
    elif kind == "extra":
        buffer = io.BytesIO(raw)
        with warnings.catch_warnings(), zipfile.ZipFile(buffer, "a") as archive:
            warnings.simplefilter("ignore")  # a duplicate name is one of the damages
            name = draw(st.sampled_from(["W0.npy", "extra.npy", "notes.txt", "dir/"]))
            content = draw(st.sampled_from([b"", b"hello", np_bytes(np.arange(3))]))
            archive.writestr(name, content)
        raw = buffer.getvalue()
    elif kind == "header":
        field = draw(st.sampled_from([b"'shape': ", b"'descr': "]))
        assume(field in raw)
        at = raw.index(field) + len(field)
        end = raw.index(b", ", at) if field == b"'descr': " else raw.index(b")", at) + 1
        raw = raw[:at] + draw(st.sampled_from(HEADER_REWRITES)).encode() + raw[end:]
    return kind, raw, arrays


def np_bytes(array):
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def np_load(path):
    """np.load's reading of every member, or None where it fails."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except Exception:  # noqa: BLE001 - any failure of the reference means "no valid reading"
        return None


def assert_same_arrays(got, expected):
    assert list(got) == list(expected)
    for name, array in expected.items():
        assert got[name].dtype == array.dtype and got[name].shape == array.shape, name
        if array.dtype.kind == "b":
            assert np.array_equal(got[name].view(np.uint8), array.view(np.uint8) != 0), name
        else:
            assert got[name].tobytes(order="A") == array.tobytes(order="A"), name


@SETTINGS
@given(case=damaged_archives())
def test_npz_reader_gives_the_error_or_what_np_load_reads(tmp_path, case):
    kind, raw, written = case
    path = tmp_path / "model.npz"
    path.write_bytes(raw)
    try:
        got = read_npz(path, ModelError)
    except ModelError as error:
        assert_one_line_error(error, path, ModelError)
        assert "pickle" not in str(error) or "never loaded" in str(error)
        assert kind != "none", "an undamaged archive must read"
        return
    reference = np_load(path)
    assert reference is not None, "read an archive np.load refuses"
    assert_same_arrays(got, reference)
    if kind == "none":
        assert_same_arrays(got, written)
