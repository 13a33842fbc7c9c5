"""Files that declare far more than they hold: each is refused from what it declares -- reading,
inflating and allocating a few MiB at most -- or read, when it is honest and within the limits, in
a process whose address space is capped at 1.5 GiB. The work is measured (bytes the process read,
bytes zlib gave out, tracemalloc's peak), not the time: the test means the same on a slow or busy
machine as on an idle one. The .npz reader has no
fixed limit: it refuses claims that the file's bytes cannot back.

The bombs are built without inflating anything: after a full flush, every MiB of zeros deflates
to the same ~1 KB, so a stream of N MiB of zeros is one block repeated N times.
"""

import gzip
import json
import struct
import subprocess
import sys
import textwrap
import zlib

import numpy as np
import pytest

from helpers import child_env, deflate, npy_header

ADDRESS_SPACE = 3 << 29  # 1.5 GiB
# The most a refusal may read, inflate or allocate (the refusals measure well under 6 MiB; the
# bombs declare or hold 900 MiB to 64 GiB).
WORK = 16 << 20
HONEST_BYTES = {"idx-bgzip-like.gz": 2 << 20, "honest.npz": 64 << 20}  # the data they hold
GIB = 1 << 30
SPARSE = 20 * GIB


def gzip_member(*parts, crc=0, size=0):
    """One gzip member around ``deflate(*parts)``; the trailer's CRC and size as given."""
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + deflate(*parts) + struct.pack("<2I", crc, size & 0xFFFFFFFF)


def idx_header(code, shape):
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}i", *shape)


def raw_zip(entries):
    """A zip archive written field by field, so that its directory can claim anything.

    ``entries``: (name, deflated payload, CRC, declared size, index of an earlier entry whose
    data this one points at, or None).
    """
    body, directory, offsets = bytearray(), bytearray(), []
    for name, payload, crc, size, same_as in entries:
        name = name.encode()
        if same_as is None:
            offsets.append(len(body))
            body += struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 8, 0, 0, crc, len(payload),
                                size, len(name), 0) + name + payload
        else:
            offsets.append(offsets[same_as])
        directory += struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 8, 0, 0, crc,
                                 len(payload), size, len(name), 0, 0, 0, 0, 0, offsets[-1]) + name
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, len(entries), len(entries),
                      len(directory), len(body), 0)
    return bytes(body + directory + end)


def zeros_crc(n_mib, prefix=b""):
    crc, block = zlib.crc32(prefix), bytes(1 << 20)
    for _ in range(n_mib):
        crc = zlib.crc32(block, crc)
    return crc


def idx_bombs(directory):
    """{name: (path, expected outcome)} for read_idx."""
    small_idx = idx_header(0x08, (12,)) + bytes(12)
    honest = idx_header(0x08, (2 << 20,)) + bytes(2 << 20)
    files = {
        # declares 12 bytes, inflates to 900 MiB: stopped after the 13th
        "idx-small-claim.gz": (gzip_member(idx_header(0x08, (12,)), 900), "more than the 12"),
        # declares 512 MiB, holds 900 MiB: refused from the trailer, without inflating
        "idx-trailer.gz": (gzip_member(idx_header(0x08, (512 << 20,)), 900,
                                       size=8 + (900 << 20)), "trailer gives 943718408 bytes"),
        # the same with 2 GiB: more compressed bytes than 12 data bytes can need
        "idx-small-claim-2g.gz": (gzip_member(idx_header(0x08, (12,)), 2048), "far more"),
        # declares 64 GiB in a few bytes
        "idx-huge-claim.gz": (gzip.compress(idx_header(0x0E, (2**31 - 1,) * 3)), "cannot hold"),
        # declares 1 GiB + 1 byte of zeros, and holds them
        "idx-over-limit.gz": (gzip_member(idx_header(0x08, (GIB + 1,)), 1025), "limit"),
        # a tiny IDX file followed by 60,000 empty gzip members
        "idx-empty-members.gz": (gzip.compress(small_idx) + gzip.compress(b"") * 60_000,
                                 "far more compressed bytes"),
        # 2 MiB of data and 30,000 empty members: refused by count, quickly
        "idx-many-members.gz": (gzip.compress(honest) + gzip.compress(b"") * 30_000,
                                "more than 1056 gzip members"),
        # the same data in 64 KiB members, as bgzip writes it: read
        "idx-bgzip-like.gz": (b"".join(gzip.compress(honest[i : i + (1 << 16)])
                                       for i in range(0, len(honest), 1 << 16)), "ok"),
    }
    paths = {}
    for name, (content, outcome) in files.items():
        paths[name] = (directory / name, outcome)
        paths[name][0].write_bytes(content)
    # a 20 GB file of which only the start is written (sparse): no reading the rest to find out
    for name, content, outcome in [
        ("idx-sparse", small_idx, "trailing bytes"),
        ("idx-sparse.gz", gzip.compress(small_idx), "larger than any IDX data"),
    ]:
        with open(directory / name, "wb") as file:
            file.write(content)
            file.truncate(SPARSE)
        paths[name] = (directory / name, outcome)
    return paths


def nested_stored(n_members, core_bytes):
    """A zip of stored members, each member's data holding the next member's whole entry: every
    entry is valid alone, and together they claim about n_members times the file."""
    inner, names = bytes(core_bytes), [f"{k}.npy" for k in range(n_members)]
    entries = []
    for name in reversed(names):
        payload = npy_header("|u1", f"({len(inner)},)") + inner
        local = struct.pack("<4s5H3I2H", b"PK\x03\x04", 20, 0, 0, 0, 0, 0, len(payload),
                            len(payload), len(name), 0) + name.encode()
        entries.append((name, len(payload), len(local) + len(payload) - len(inner)))
        inner = local + payload
    directory, offset = bytearray(), 0
    for name, size, step in reversed(entries):
        directory += struct.pack("<4s6H3I5H2I", b"PK\x01\x02", 20, 20, 0, 0, 0, 0, 0, size,
                                 size, len(name), 0, 0, 0, 0, 0, offset) + name.encode()
        offset += step
    end = struct.pack("<4s4H2IH", b"PK\x05\x06", 0, 0, n_members, n_members,
                      len(directory), len(inner), 0)
    return inner + bytes(directory) + end


def npz_bombs(directory):
    """{name: (path, expected outcome)} for read_npz."""
    gib = npy_header("|u1", f"({GIB},)")
    small = npy_header("|u1", "(64,)")
    mib = npy_header("|u1", f"({1 << 20},)")
    mib64 = npy_header("|u1", f"({64 << 20},)")
    honest = deflate(mib64, 64)
    honest_entry = ("a.npy", honest, zeros_crc(64, mib64), len(mib64) + (64 << 20), None)
    files = {
        # 1 KB of deflate data declaring 1 GiB: deflate cannot expand 1 KB that far
        "gib.npz": ([("a.npy", deflate(gib, 1), 0, len(gib) + GIB, None)],
                    "compressed bytes can hold"),
        # 3 KB declaring 3 GiB in three members
        "three-gib.npz": ([(f"{k}.npy", deflate(gib, 1), 0, len(gib) + GIB, None)
                           for k in "abc"], "compressed bytes can hold"),
        # declares 1 MiB, inflates to 900 MiB: stopped after the declared bytes
        "small-claim.npz": ([("a.npy", deflate(mib, 900), 0, len(mib) + (1 << 20), None)],
                            "more bytes than declared"),
        # declares 64 bytes, inflates to 1 GiB: more compressed bytes than 64 can need
        "tiny-claim.npz": ([("a.npy", deflate(small, 1024), 0, len(small) + 64, None)],
                           "compressed bytes for 133 bytes"),
        # the directory says 64 bytes; the .npy header says 1 GiB
        "header-claim.npz": ([("a.npy", deflate(gib, bytes(64)), 0, len(gib) + 64, None)],
                             "needs 1073741824 data bytes, the zip directory gives 64"),
        # 64 MiB of zeros, honest and within the limits: read
        "honest.npz": ([honest_entry], "ok"),
        # the same data behind 17 directory entries (entries overlap)
        "overlap.npz": ([honest_entry] + [(f"{k}.npy", *honest_entry[1:4], 0) for k in range(16)],
                        "give different names"),
    }
    paths = {}
    for name, (entries, outcome) in files.items():
        paths[name] = (directory / name, outcome)
        paths[name][0].write_bytes(raw_zip(entries))
    # 1 MiB behind 2,000 nested entries: about 2 GiB claimed by a 1 MiB file
    (directory / "nested.npz").write_bytes(nested_stored(2000, 1 << 20))
    paths["nested.npz"] = (directory / "nested.npz", "overlap in the file")
    with open(directory / "sparse.npz", "wb") as file:
        np.savez(file, a=np.arange(3))
        file.truncate(SPARSE)
    paths["sparse.npz"] = (directory / "sparse.npz", "not an .npz archive")
    return paths


RUNNER = textwrap.dedent(
    """
    import json, resource, sys, tracemalloc, zlib
    resource.setrlimit(resource.RLIMIT_AS, (%d, %d))
    from jitnet.data.idx import DataError, read_idx
    from jitnet.io.npzfile import read_npz

    inflated = [0]
    real_decompressobj = zlib.decompressobj

    class Counting:
        \"\"\"A zlib decompressor that counts the bytes it gives out.\"\"\"

        def __init__(self, *args, **kwargs):
            self._inflater = real_decompressobj(*args, **kwargs)

        def decompress(self, *args, **kwargs):
            out = self._inflater.decompress(*args, **kwargs)
            inflated[0] += len(out)
            return out

        def flush(self, *args):
            out = self._inflater.flush(*args)
            inflated[0] += len(out)
            return out

        def __getattr__(self, name):
            return getattr(self._inflater, name)

    zlib.decompressobj = Counting

    def bytes_read():  # what read() calls returned to this process, sparse holes included
        with open("/proc/self/io") as io:
            return int(next(line for line in io if line.startswith("rchar:")).split()[1])

    tracemalloc.start()
    results = {}
    for name, path in json.loads(sys.argv[1]).items():
        read = read_npz if name.endswith(".npz") else read_idx
        inflated[0] = 0
        tracemalloc.reset_peak()
        before = bytes_read()
        try:
            read(path)
            outcome = "ok"
        except DataError as error:
            outcome = "DataError: " + str(error)
        except BaseException as error:
            outcome = type(error).__name__ + ": " + str(error)
        work = {"read": bytes_read() - before, "inflated": inflated[0],
                "peak": tracemalloc.get_traced_memory()[1]}
        results[name] = (outcome, work)
    print(json.dumps(results))
    """
    % (ADDRESS_SPACE, ADDRESS_SPACE)
)


@pytest.mark.skipif(sys.platform != "linux", reason="RLIMIT_AS, /proc and sparse files as on Linux")
def test_bombs_are_refused_before_inflating_or_allocating(tmp_path):
    try:
        bombs = {**idx_bombs(tmp_path), **npz_bombs(tmp_path)}
        env = child_env(OPENBLAS_NUM_THREADS="1")
        argument = json.dumps({name: str(path) for name, (path, _) in bombs.items()})
        run = subprocess.run([sys.executable, "-c", RUNNER, argument], env=env,
                             capture_output=True, text=True, timeout=600)  # a hang
        assert run.returncode == 0, run.stderr
        results = json.loads(run.stdout)
    finally:
        for sparse in tmp_path.glob("*sparse*"):
            sparse.unlink()
    for name, (path, expected) in bombs.items():
        outcome, work = results[name]
        if expected == "ok":
            assert outcome == "ok", (name, outcome)
            # Read once: what the file holds inflated, and about that much memory.
            data = HONEST_BYTES[name]
            assert data <= work["inflated"] <= data + (1 << 20), (name, work)
            assert work["peak"] < data + WORK, (name, work)
        else:
            assert outcome.startswith("DataError: ") and expected in outcome, (name, outcome)
            assert "\n" not in outcome
            # Refused from what the file declares: a bomb inflated, read to its end or allocated
            # as declared would show hundreds of MiB here.
            assert work["read"] < WORK and work["inflated"] < WORK, (name, work)
            assert work["peak"] < WORK, (name, work)
