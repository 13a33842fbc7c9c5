"""The IDX reader and writer: exact round trips, the byte layout, one clear error per bad file."""

import gzip
import os
import zlib

import numpy as np
import pytest

from jitnet.io.atomic import atomic_write
from jitnet.data.idx import DataError, read_idx, write_idx

TYPE_CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}
SHAPES = [(1,), (7,), (3, 5), (4, 3, 2), (2, 1, 3, 2)]


def sample_array(dtype, shape, seed=0):
    """Seeded values spanning the dtype, with its extremes (NaN, inf, -0.0 for floats) mixed in."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        values = rng.standard_normal(shape).astype(dtype) * 1e3
        info = np.finfo(dtype)
        special = [np.nan, np.inf, -np.inf, -0.0, info.max, info.smallest_subnormal]
    else:
        info = np.iinfo(dtype)
        values = rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)
        special = [info.min, info.max, 0]
    flat = values.reshape(-1)
    flat[: len(special)] = np.array(special, dtype=dtype)[: flat.size]
    return values


def assert_identical(read, written):
    """Same shape, same native dtype and the same bits (so NaN and -0.0 count too)."""
    assert read.shape == written.shape
    assert read.dtype == written.dtype.newbyteorder("=")
    assert read.dtype.isnative
    assert read.tobytes() == written.astype(read.dtype).tobytes()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("dtype", list(TYPE_CODES), ids=lambda t: np.dtype(t).name)
def test_round_trip_every_type_code(tmp_path, dtype, suffix, shape):
    array = sample_array(dtype, shape)
    path = tmp_path / f"a.idx{suffix}"
    write_idx(path, array)
    read = read_idx(path)
    assert_identical(read, array)
    assert read.flags.c_contiguous and read.flags.writeable
    raw = path.read_bytes()
    assert raw.startswith(b"\x1f\x8b") == (suffix == ".gz")
    header = gzip.decompress(raw) if suffix else raw
    assert header[:4] == bytes([0, 0, TYPE_CODES[dtype], len(shape)])


def test_known_bytes_of_a_tiny_int16_file(tmp_path):
    path = tmp_path / "tiny.idx"
    write_idx(path, np.array([[1, -2, 3], [256, 0, -32768]], dtype=np.int16))
    assert path.read_bytes() == bytes.fromhex(
        "0000 0b02 0000 0002 0000 0003 0001 fffe 0003 0100 0000 8000"
    )


def test_reads_hand_made_bytes(tmp_path):
    path = tmp_path / "hand.idx"
    path.write_bytes(bytes.fromhex("0000 0c01 0000 0002 0000 0001 ffff ffff"))
    result = read_idx(path)
    assert result.dtype == np.int32 and result.shape == (2,)
    assert result.tolist() == [1, -1]


def test_float_bytes_are_big_endian(tmp_path):
    path = tmp_path / "f.idx"
    write_idx(path, np.array([1.0, -2.5], dtype=np.float32))
    assert path.read_bytes()[8:] == bytes.fromhex("3f800000 c0200000")
    assert read_idx(path).tolist() == [1.0, -2.5]


@pytest.mark.parametrize("order", ["<", ">"])
def test_either_byte_order_writes_the_same_file(tmp_path, order):
    values = np.array([[1, 70000], [-3, 2**31 - 1]], dtype=np.int32)
    write_idx(tmp_path / "native", values)
    write_idx(tmp_path / "other", values.astype(np.dtype(np.int32).newbyteorder(order)))
    assert (tmp_path / "native").read_bytes() == (tmp_path / "other").read_bytes()


def test_non_contiguous_input_is_written_in_row_major_order(tmp_path):
    values = np.arange(12, dtype=np.uint8).reshape(3, 4).T
    write_idx(tmp_path / "t", values)
    assert read_idx(tmp_path / "t").tolist() == values.tolist()


def test_gzip_is_detected_by_content_not_name(tmp_path):
    values = np.arange(10, dtype=np.uint8)
    write_idx(tmp_path / "zipped.gz", values)
    write_idx(tmp_path / "plain", values)
    (tmp_path / "zipped.gz").rename(tmp_path / "no-suffix")
    (tmp_path / "plain").rename(tmp_path / "plain-but-named.gz")
    assert read_idx(tmp_path / "no-suffix").tolist() == list(range(10))
    assert read_idx(tmp_path / "plain-but-named.gz").tolist() == list(range(10))


def test_multi_member_gzip_and_zero_padding_are_accepted(tmp_path):
    write_idx(tmp_path / "plain", np.arange(100, dtype=np.int16))
    payload = (tmp_path / "plain").read_bytes()
    joined = gzip.compress(payload[:50]) + gzip.compress(payload[50:]) + b"\0" * 8
    (tmp_path / "joined.gz").write_bytes(joined)
    assert read_idx(tmp_path / "joined.gz").tolist() == list(range(100))


def test_empty_dimension_round_trips(tmp_path):
    write_idx(tmp_path / "empty", np.zeros((0, 28, 28), dtype=np.uint8))
    assert read_idx(tmp_path / "empty").shape == (0, 28, 28)


def test_accepts_str_paths(tmp_path):
    write_idx(str(tmp_path / "s.gz"), np.array([3], dtype=np.uint8))
    assert read_idx(str(tmp_path / "s.gz")).tolist() == [3]


# ---- bad input: each case names the file and says what is wrong, in one line ----

HEADER = bytes.fromhex("0000 0802 0000 0003 0000 0004")  # uint8, shape (3, 4)
DATA = bytes(range(12))


def gzip_bytes():
    return gzip.compress(HEADER + DATA, mtime=0)


def gzip_with_flipped_deflate_byte():
    noise = np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8).tobytes()
    header = bytes.fromhex("0000 0801 0000 0fa0")  # uint8, shape (4000,)
    raw = bytearray(gzip.compress(header + noise, mtime=0))
    raw[len(raw) // 2] ^= 0xFF
    return bytes(raw)


def gzip_with_wrong_crc():
    raw = bytearray(gzip_bytes())
    raw[-8] ^= 0x01  # CRC-32 of the uncompressed data, in the 8-byte trailer
    return bytes(raw)


BAD_FILES = {
    "empty": (b"", "not an IDX file"),
    "two-bytes": (b"\0\0", "not an IDX file"),
    "wrong-magic": (b"\x01\x00" + HEADER[2:] + DATA, "0x0100, expected 0x0000"),
    "text": (b"hello world\n", "not an IDX file"),
    "unknown-type": (b"\0\0\x0a\x02" + HEADER[4:] + DATA, "unknown IDX type code 0x0A"),
    "zero-dims": (b"\0\0\x08\x00" + DATA, "zero dimensions"),
    "short-header": (HEADER[:9], "truncated IDX header"),
    "negative-size": (bytes.fromhex("0000 0801 ffff fffd") + DATA, "negative size"),
    "truncated": (HEADER + DATA[:-1], "needs 12 bytes after the header, found 11"),
    "trailing": (HEADER + DATA + b"\0", "trailing bytes: 1 after the 12"),
    "huge-claim": (bytes.fromhex("0000 0e03 7fffffff 7fffffff 7fffffff") + DATA, "found 12"),
    "gz-truncated-data": (gzip.compress(HEADER + DATA[:-2]), "found 10"),
    "gz-trailing-data": (gzip.compress(HEADER + DATA + b"xyz"), "more than the 12 data bytes"),
    "gz-cut-short": (gzip_bytes()[:-5], "corrupt gzip"),
    "gz-header-only": (b"\x1f\x8b", "corrupt gzip"),
    "gz-flipped-byte": (gzip_with_flipped_deflate_byte(), "corrupt gzip"),
    "gz-wrong-crc": (gzip_with_wrong_crc(), "corrupt gzip"),
    "gz-stray-bytes": (gzip_bytes() + b"junk", "4 stray bytes after the gzip stream"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_file_raises_one_clear_data_error(tmp_path, case):
    content, expected = BAD_FILES[case]
    path = tmp_path / f"{case}-file"
    path.write_bytes(content)
    with pytest.raises(DataError) as error:
        read_idx(path)
    message = str(error.value)
    assert message.startswith(str(path))
    assert expected in message
    assert "\n" not in message


def test_the_good_versions_of_the_bad_files_read(tmp_path):
    """Guards the table above: the unbroken bytes are a valid file."""
    for name, content in {"plain": HEADER + DATA, "gz": gzip_bytes()}.items():
        (tmp_path / name).write_bytes(content)
        assert read_idx(tmp_path / name).tolist() == np.arange(12).reshape(3, 4).tolist()


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(DataError, match="no such file") as error:
        read_idx(tmp_path / "absent.idx")
    assert str(tmp_path / "absent.idx") in str(error.value)
    with pytest.raises(DataError, match="cannot read") as error:
        read_idx(tmp_path)
    assert str(tmp_path) in str(error.value)


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


@pytest.mark.parametrize(
    "dtype", [np.int64, np.uint16, np.float16, np.bool_, np.complex128, object]
)
def test_write_refuses_dtypes_without_a_type_code(tmp_path, dtype):
    path = tmp_path / "x.idx"
    with pytest.raises(DataError, match="cannot write dtype") as error:
        write_idx(path, np.zeros(3, dtype=dtype))
    assert str(path) in str(error.value)
    assert not path.exists()


def test_write_refuses_0d_arrays(tmp_path):
    with pytest.raises(DataError, match="0-d"):
        write_idx(tmp_path / "x.idx", np.float64(1.0))


def test_gzip_output_is_deterministic(tmp_path):
    values = sample_array(np.float32, (20, 3))
    write_idx(tmp_path / "a.gz", values)
    write_idx(tmp_path / "b.gz", values)
    assert (tmp_path / "a.gz").read_bytes() == (tmp_path / "b.gz").read_bytes()


# ---- headers that declare what numpy cannot build, paths that are not files, bounded work ----


@pytest.mark.parametrize(
    "header, expected",
    [
        (bytes([0, 0, 8, 33]) + bytes(4 * 33), "33 dimensions; at most 32"),
        (bytes([0, 0, 8, 65]) + bytes(4 * 65), "65 dimensions"),
        (bytes([0, 0, 8, 255]) + bytes(4 * 255), "255 dimensions"),
        (bytes.fromhex("0000 0e03 00000000 7fffffff 7fffffff"), "over the 1073741824-byte limit"),
        (bytes.fromhex("0000 0803 7fffffff 7fffffff 00000000"), "over the 1073741824-byte limit"),
    ],
    ids=["33-dims", "65-dims", "255-dims", "zero-beside-huge-f8", "huge-beside-zero-u1"],
)
def test_shapes_numpy_cannot_build_are_refused(tmp_path, header, expected):
    for name, content in [("plain", header), ("packed.gz", gzip.compress(header))]:
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DataError, match=expected) as error:
            read_idx(path)
        assert str(error.value).startswith(str(path))


def test_max_bytes_is_checked_before_reading(tmp_path):
    write_idx(tmp_path / "a.gz", np.zeros((10, 10), np.float32))
    assert read_idx(tmp_path / "a.gz", max_bytes=400).shape == (10, 10)
    with pytest.raises(DataError, match="400 bytes, over the 399-byte limit"):
        read_idx(tmp_path / "a.gz", max_bytes=399)
    # numpy builds no array over sys.maxsize bytes, so a larger limit changes nothing
    path = tmp_path / "empty-but-huge"
    path.write_bytes(bytes.fromhex("0000 0e03 00000000 7fffffff 7fffffff"))
    with pytest.raises(DataError, match="limit"):
        read_idx(path, max_bytes=2**80)


def test_gzip_claiming_more_than_it_can_hold_is_refused_before_inflating(tmp_path):
    path = tmp_path / "claims.gz"
    path.write_bytes(gzip.compress(bytes.fromhex("0000 0801 3fffffff") + bytes(100)))
    with pytest.raises(DataError, match="cannot hold that many"):
        read_idx(path)


def test_gzip_inflates_no_further_than_the_declared_size(tmp_path, monkeypatch):
    inflated = []
    real = zlib.decompressobj

    class Counting:
        def __init__(self, *args):
            self._inner = real(*args)

        def decompress(self, data, limit=0):
            out = self._inner.decompress(data, limit)
            inflated.append(len(out))
            return out

        def __getattr__(self, name):
            return getattr(self._inner, name)

    path = tmp_path / "long.gz"
    path.write_bytes(gzip.compress(HEADER + DATA + bytes(5_000_000)))
    monkeypatch.setattr(zlib, "decompressobj", Counting)
    with pytest.raises(DataError, match="holds more than the 12 data bytes"):
        read_idx(path)
    assert sum(inflated) == len(HEADER) + len(DATA) + 1


def test_special_files_and_odd_paths(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    cases = {
        fifo: ("cannot read a FIFO", str(fifo)),
        "/dev/zero": ("cannot read a character device", "/dev/zero"),
        tmp_path: ("cannot read a directory", str(tmp_path)),
        f"{tmp_path}/a\0b": ("invalid file name (it contains a NUL byte)", f"{tmp_path}/a\\x00b"),
        tmp_path / "new\nline": ("no such file", f"{tmp_path}/new\\nline"),
        "x" * 5000: ("cannot open", "x" * 5000),
    }
    for path, (expected, shown) in cases.items():
        with pytest.raises(DataError) as error:
            read_idx(path)
        message = str(error.value)
        assert message.startswith(shown) and expected in message, message
        assert "\n" not in message and "\0" not in message


def test_a_file_named_with_a_newline_reads(tmp_path):
    write_idx(tmp_path / "a\nb.gz", np.arange(3, dtype=np.uint8))
    assert read_idx(tmp_path / "a\nb.gz").tolist() == [0, 1, 2]


@pytest.mark.parametrize(
    "array, expected",
    [
        ([[1, 2], [3]], "not an array"),
        (np.zeros((1,) * 33, np.uint8), "33-d array"),
        (np.array(["a"]), "cannot write dtype <U1"),
        (object(), "cannot write dtype object"),
    ],
    ids=["ragged", "33-dims", "strings", "object"],
)
def test_write_refuses_what_is_not_an_idx_array(tmp_path, array, expected):
    path = tmp_path / "x.idx"
    with pytest.raises(DataError, match=expected) as error:
        write_idx(path, array)
    assert str(error.value).startswith(str(path))
    assert list(tmp_path.iterdir()) == []


def test_write_refuses_a_nul_in_the_path(tmp_path):
    with pytest.raises(DataError, match="NUL byte"):
        write_idx(f"{tmp_path}/a\0b", np.zeros(3, np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_failed_writes_leave_the_old_file_and_no_temporary_file(tmp_path):
    path = tmp_path / "a.idx"
    write_idx(path, np.arange(5, dtype=np.uint8))
    before = path.read_bytes()

    def interrupted(file):
        file.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, interrupted)
    with pytest.raises(DataError):
        write_idx(path, np.arange(5, dtype=np.int64))
    (tmp_path / "dir.idx").mkdir()
    with pytest.raises(OSError):
        write_idx(tmp_path / "dir.idx", np.arange(5, dtype=np.uint8))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.idx", "dir.idx"]
