"""What jitnet writes, it reads, at any size; and a file's claims are checked against its bytes.

The readers have no fixed size limit. A stored member must lie inside the file, a deflate member
cannot declare more than 1032 times its compressed bytes, members may not share bytes, and a
model's sizes must be those of the layers stored in it: a file that claims more than it holds
is refused before anything is allocated for the claim.
"""

import gc
import struct
import tracemalloc
import zlib

import numpy as np
import pytest

from jitnet.engine.network import ModelFileError, Network
from jitnet.io.errors import DataError
from jitnet.io.npzfile import DEFLATE_RATIO, read_npz
from jitnet.training import CheckpointError, load_model


def test_a_network_with_a_576_mb_layer_saves_and_loads_back_bitwise(tmp_path):
    """Layer 1 holds 12000 x 12000 float32 weights, over twice the readers' old 256 MiB cap;
    Network.load and the command line's reader (load_model) both read it back."""
    path = tmp_path / "big.npz"
    net = Network([100, 12000, 12000, 10], dtype="float32", seed=0)
    assert net.weights[1].nbytes == 576_000_000
    net.input_scale = 1.0
    net.save(path)
    try:
        for read in (Network.load, lambda p: load_model(p)[0]):
            loaded = read(path)
            assert loaded.sizes == net.sizes and loaded.dtype == np.float32
            assert loaded.input_scale == 1.0
            assert np.array_equal(loaded.params.view(np.uint32), net.params.view(np.uint32))
            del loaded
    finally:
        del net
        path.unlink()
        gc.collect()


# -- members that claim more than the file holds ------------------------------------------------


def npy(shape, descr="|u1"):
    text = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }\n" % (descr, shape)
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()


def local_entry(name, payload, method=0, size=None):
    """A zip local header and its data; ``size`` is what it declares uncompressed."""
    size = len(payload) if size is None else size
    crc = zlib.crc32(payload) if method == 0 else 0
    return struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, method, 0, 0, crc, len(payload), size,
                       len(name), 0) + name.encode() + payload, crc


def archive(body, rows):
    """A zip whose local entries are ``body`` and whose directory lists ``rows``: (name, offset
    of its local entry, method, CRC, compressed size, size)."""
    directory = b"".join(
        struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, method, 0, 0, crc, packed, size,
                    len(name), 0, 0, 0, 0, 0, offset) + name.encode()
        for name, offset, method, crc, packed, size in rows)
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(rows), len(rows), len(directory),
                      len(body), 0)
    return body + directory + end


def nested(n_members, core_bytes):
    """Stored members, each one's data holding the next member's whole entry, every CRC right:
    each member alone is a valid array, and together they claim about n_members files."""
    inner, rows, offset = bytes(core_bytes), [], 0
    steps = []
    for k in reversed(range(n_members)):
        payload = npy(f"({len(inner)},)") + inner
        entry, crc = local_entry(f"a{k}.npy", payload)
        steps.append((f"a{k}.npy", crc, len(payload), len(entry) - len(inner)))
        inner = entry
    for name, crc, size, step in reversed(steps):
        rows.append((name, offset, 0, crc, size, size))
        offset += step
    return archive(inner, rows)


def refused_before_allocation(path, words):
    tracemalloc.start()
    try:
        with pytest.raises(DataError) as error:
            read_npz(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(error.value)
    assert words in message and "\n" not in message and message.startswith(str(path)), message
    assert peak < path.stat().st_size + (4 << 20), peak


def test_members_that_share_bytes_are_refused(tmp_path):
    path = tmp_path / "nested.npz"
    path.write_bytes(nested(3, 1000))
    with np.load(path) as each_alone_is_valid:  # np.load reads 1000 bytes three times over
        sizes = [each_alone_is_valid[f"a{k}"].size for k in range(3)]
    assert sizes[0] > sizes[1] > sizes[2] == 1000 and sum(sizes) > path.stat().st_size
    refused_before_allocation(path, "arrays 'a0' and 'a1' overlap in the file")
    path.write_bytes(nested(200, 1 << 20))  # 1 MiB claimed 200 times
    refused_before_allocation(path, "overlap in the file")


def test_a_stored_member_cannot_claim_more_than_the_file(tmp_path):
    payload = npy("(4000000,)") + bytes(64)  # 64 of the 4,000,000 data bytes it declares
    claim = len(payload) - 64 + 4_000_000
    entry, crc = local_entry("a.npy", payload, size=claim)
    path = tmp_path / "stored.npz"
    path.write_bytes(archive(entry, [("a.npy", 0, 0, crc, claim, claim)]))
    refused_before_allocation(path, "would end past the file's")


@pytest.mark.parametrize("n_mib, readable", [(8, True), (1, False)])
def test_a_deflate_member_may_claim_up_to_1032_times_its_bytes(tmp_path, n_mib, readable):
    """8 MiB of zeros deflate to about 8 KB (1011:1) and are read; the same claim over 1 MiB of
    deflate data is beyond any deflate stream."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    header = npy(f"({8 << 20},)")
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    data = compressor.compress(header) + compressor.flush(zlib.Z_FULL_FLUSH) + block * n_mib
    data += compressor.flush()
    size = len(header) + (8 << 20)
    entry, _ = local_entry("a.npy", data, method=8, size=size)
    crc = zlib.crc32(bytes(8 << 20), zlib.crc32(header))
    path = tmp_path / "deflate.npz"
    path.write_bytes(archive(entry, [("a.npy", 0, 8, crc, len(data), size)]))
    assert (size <= DEFLATE_RATIO * len(data)) == readable
    if readable:
        assert read_npz(path)["a"].size == 8 << 20
    else:
        refused_before_allocation(path, f"more than its {len(data)} compressed bytes can hold")


def test_model_sizes_must_be_those_of_its_stored_layers(tmp_path):
    """A few bytes of sizes cannot make the reader build a network its file does not hold."""
    arrays = Network([6, 4, 3], seed=0).to_arrays()
    arrays["sizes"] = np.array([6, 400_000_000, 3])
    np.savez(tmp_path / "m.npz", **arrays)
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError, match=r"m\.npz: parameters do not fit the model "
                                                 r"\(layer 0: W must have shape \(400000000, 6\)"):
            Network.load(tmp_path / "m.npz")
        assert tracemalloc.get_traced_memory()[1] < 4 << 20
    finally:
        tracemalloc.stop()
    with pytest.raises(CheckpointError, match="W must have shape"):
        load_model(tmp_path / "m.npz")
