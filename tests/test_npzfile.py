"""The safe .npz reader: np.load's results for valid archives, one clear error for anything else.

Archives that declare far more than they hold (bombs) are in test_bombs.py."""

import io
import json
import os
import struct
import zipfile

import numpy as np
import pytest

from jitnet.io.npzfile import ArrayHeader, NpzArchive, read_npz


class ModelError(ValueError):
    """Stands for a caller's own error class (ModelFileError, CheckpointError)."""


def sample_arrays():
    """Every kind of member a model or checkpoint holds, and the layouts np.save can write."""
    rng = np.random.default_rng(0)
    return {
        "format": np.array("jitnet-model"),
        "format_version": np.array(1),
        "sizes": np.array([4, 3, 2], np.int64),
        "W0": rng.standard_normal((3, 4)),
        "b0": rng.standard_normal(3).astype(np.float32),
        "state": np.frombuffer(json.dumps({"epoch": 3}).encode(), np.uint8),
        "fortran": np.asfortranarray(np.arange(6, dtype=">i4").reshape(2, 3)),
        "flags": np.array([True, False, True]),
        "empty": np.zeros((0, 5)),
        "scalar": np.array(2.5),
        "names": np.array(["a", "bcd"]),
        "raw": np.array([b"x\0", b"yz"]),
        "complex": np.array([1 + 2j], np.complex64),
        "int8": np.array([-128, 127], np.int8),
        "uint16": np.array([0, 65535], ">u2"),
    }


def saved(path, arrays, compressed=False):
    (np.savez_compressed if compressed else np.savez)(path, **arrays)
    return path


def assert_same_as_np_load(result, path):
    with np.load(path, allow_pickle=False) as reference:
        assert list(result) == list(reference.files)
        for name in reference.files:
            expected, got = reference[name], result[name]
            assert got.dtype == expected.dtype, name
            assert got.shape == expected.shape, name
            assert got.flags.f_contiguous == expected.flags.f_contiguous, name
            assert got.flags.c_contiguous == expected.flags.c_contiguous, name
            assert got.tobytes(order="A") == expected.tobytes(order="A"), name
            assert got.flags.writeable, name


@pytest.mark.parametrize("compressed", [False, True], ids=["stored", "deflate"])
def test_reads_what_np_load_reads(tmp_path, compressed):
    path = saved(tmp_path / "m.npz", sample_arrays(), compressed)
    assert_same_as_np_load(read_npz(path), path)


def test_values_of_a_hand_made_archive(tmp_path):
    arrays = {"a": np.array([[1, 2], [3, 4]], np.int16), "s": np.array("hi")}
    path = saved(tmp_path / "m.npz", arrays)
    result = read_npz(str(path))
    assert result["a"].tolist() == [[1, 2], [3, 4]]
    assert str(result["s"][()]) == "hi"


def test_empty_archive_and_big_array(tmp_path):
    assert read_npz(saved(tmp_path / "e.npz", {})) == {}
    big = np.arange(600_000, dtype=np.float64)  # several read and inflate chunks
    for compressed in (False, True):
        path = saved(tmp_path / f"big{compressed}.npz", {"x": big}, compressed)
        assert np.array_equal(read_npz(path)["x"], big)


def test_headers_and_reading_one_array_at_a_time(tmp_path):
    path = saved(tmp_path / "m.npz", sample_arrays(), compressed=True)
    with NpzArchive(path, ModelError) as archive:
        assert archive.headers["W0"] == ArrayHeader((3, 4), np.dtype("<f8"), False, 96)
        assert archive.headers["fortran"].fortran_order
        sizes = archive.read("sizes")
        assert sizes.tolist() == [4, 3, 2]
        assert archive.read("W0").shape == (sizes[1], sizes[0])
        error = archive.error("layer 0 does not fit")
    assert isinstance(error, ModelError)
    assert str(error) == f"{path}: layer 0 does not fit"


# ---- what the messages name ----


def test_what_goes_before_the_path(tmp_path):
    path = tmp_path / "m.npz"
    path.write_bytes(b"junk")
    with pytest.raises(ModelError, match=r"^model file .*m\.npz: not an \.npz archive"):
        read_npz(path, ModelError, what="model file")


# ---- one clear error for every bad archive ----


def npy_bytes(header, data=b"", version=(1, 0)):
    """An .npy member with a hand-written header dict."""
    text = header.encode("latin-1")
    length = struct.pack("<H" if version == (1, 0) else "<I", len(text))
    return b"\x93NUMPY" + bytes(version) + length + text + data


def zipped(members, method=zipfile.ZIP_STORED):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def one_npy(header, data=b"", method=zipfile.ZIP_STORED, version=(1, 0)):
    return zipped({"a.npy": npy_bytes(header, data, version)}, method)


def head(descr="'<i2'", shape="(2,)", fortran="False"):
    return "{'descr': %s, 'fortran_order': %s, 'shape': %s, }\n" % (descr, fortran, shape)


def archive_bytes(compressed=False):
    buffer = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(buffer, x=np.arange(1000, dtype=np.int32))
    return buffer.getvalue()


def with_flag(content, flag):
    raw = bytearray(content)
    entry = raw.rfind(b"PK\x01\x02")
    raw[entry + 8] |= flag
    return bytes(raw)


def flipped(content, offset):
    raw = bytearray(content)
    raw[offset] ^= 0xFF
    return bytes(raw)


def plain_npy():
    buffer = io.BytesIO()
    np.save(buffer, np.arange(3))
    return buffer.getvalue()


GOOD = head(), b"\x01\x00\x02\x00"
BAD_ARCHIVES = {
    "plain-npy": (plain_npy(), "a single .npy array, not an .npz archive"),
    "empty": (b"", "not an .npz archive"),
    "text": (b"just text\n", "not an .npz archive"),
    "truncated": (archive_bytes()[:-30], "not an .npz archive"),
    "object-dtype": (one_npy(head("'|O'")), "pickled Python objects are never loaded"),
    "bad-dtype": (one_npy(head("'<f99'")), "unsupported dtype '<f99'"),
    "datetime": (one_npy(head("'<M8[s]'")), "unsupported dtype"),
    "structured": (one_npy(head("[('a', '<f8')]")), "structured dtypes"),
    "endless-shape": (one_npy(head(shape="(99999999999999999999,)")), "over the"),
    "huge-shape": (one_npy(head(shape="(100000, 100000, 100000)")),
                   "needs 2000000000000000 data bytes, the zip directory gives 0"),
    "zero-beside-huge": (one_npy(head(shape="(0, 9223372036854775807)")), "over the"),
    "too-long-number": (one_npy(head(shape="(" + "9" * 5000 + ",)")), "a number too long"),
    "33-dims": (one_npy(head(shape="(" + "1, " * 33 + ")")), "33 dimensions"),
    "negative": (one_npy(head(shape="(-1,)")), "malformed .npy header"),
    "not-a-tuple": (one_npy(head(shape="(2)")), "is not a tuple"),
    "nested": (one_npy(head(shape="(" * 3000 + ")" * 3000)), "malformed .npy header"),
    "call": (one_npy(head(shape="__import__('os')")), "malformed .npy header"),
    "extra-key": (one_npy("{'descr': '<i2', 'x': 1, 'fortran_order': False, 'shape': (2,)}"),
                  "has keys"),
    "fortran-not-bool": (one_npy(head(fortran="1"), GOOD[1]), "fortran_order is 1"),
    "huge-header": (one_npy(head() + " " * 70000, GOOD[1], version=(2, 0)), "header of 70"),
    "version-9": (one_npy(*GOOD, version=(9, 0)), "version 9.0"),
    "not-npy-member": (zipped({"a.txt": b"hello"}), "is not an .npy array"),
    "no-magic": (zipped({"a.npy": b"hello"}), "no NUMPY magic"),
    # zipfile cuts a name at a NUL byte: two members named "a.npy"
    "duplicate": (zipped({"a.npy": npy_bytes(*GOOD), "a.npy ": b""}).replace(b"a.npy ", b"a.npy\0"),
                  "two members"),
    "short-data": (one_npy(GOOD[0], GOOD[1][:-1]), "needs 4 data bytes, the zip directory gives 3"),
    "long-data": (one_npy(GOOD[0], GOOD[1] + b"\0"), "needs 4 data bytes"),
    "bzip2": (one_npy(*GOOD, method=zipfile.ZIP_BZIP2), "compression method 12 (bzip2)"),
    "lzma": (one_npy(*GOOD, method=zipfile.ZIP_LZMA), "compression method 14 (lzma)"),
    "encrypted": (with_flag(one_npy(*GOOD), 0x1), "encrypted"),
    "bad-crc": (flipped(archive_bytes(), 200), "CRC-32 mismatch"),
    "bad-deflate": (flipped(archive_bytes(True), 100), "damaged"),
}


@pytest.mark.parametrize("case", list(BAD_ARCHIVES))
def test_bad_archive_raises_the_callers_error_once(tmp_path, case):
    content, expected = BAD_ARCHIVES[case]
    path = tmp_path / f"{case}.npz"
    path.write_bytes(content)
    with pytest.raises(ModelError) as error:
        read_npz(path, ModelError)
    message = str(error.value)
    assert type(error.value) is ModelError
    assert error.value.__cause__ is None  # raised once: a traceback shows no other exception
    assert error.value.__context__ is None or error.value.__suppress_context__
    assert message.startswith(f"{path}: ") and "\n" not in message
    assert expected in message
    assert "pickle=" not in message


def test_the_good_versions_of_the_bad_archives_read(tmp_path):
    """Guards the table above: the unbroken members are valid."""
    for name, content in {
        "v1": one_npy(*GOOD),
        "v2": one_npy(*GOOD, version=(2, 0)),
        "v3": one_npy(*GOOD, version=(3, 0)),
        "double-quotes": one_npy(GOOD[0].replace("'", '"'), GOOD[1]),
        "deflate": one_npy(*GOOD, method=zipfile.ZIP_DEFLATED),
        "stored": archive_bytes(),
        "compressed": archive_bytes(True),
    }.items():
        (tmp_path / name).write_bytes(content)
        result = read_npz(tmp_path / name)
        assert result.get("a", np.array([1, 2])).tolist() == [1, 2], name


def test_bool_bytes_other_than_0_and_1_read_as_true(tmp_path):
    path = tmp_path / "b.npz"
    path.write_bytes(one_npy(head("'|b1'", "(3,)"), b"\x00\x02\x01"))
    result = read_npz(path)["a"]
    assert result.tolist() == [False, True, True]
    assert result.view(np.uint8).tolist() == [0, 1, 1]


def test_bad_paths(tmp_path):
    cases = {
        str(tmp_path / "a\0b.npz"): "invalid file name (it contains a NUL byte)",
        str(tmp_path / "absent.npz"): "no such file",
        str(tmp_path): "cannot read a directory",
        "/dev/zero": "cannot read a character device",
    }
    fifo = tmp_path / "fifo.npz"
    os.mkfifo(fifo)
    cases[str(fifo)] = "cannot read a FIFO"
    for path, expected in cases.items():
        with pytest.raises(ModelError) as error:
            read_npz(path, ModelError, what="checkpoint")
        message = str(error.value)
        assert message.startswith("checkpoint ") and expected in message, message
        assert "\0" not in message and "\n" not in message
