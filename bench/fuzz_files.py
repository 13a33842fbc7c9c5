"""Mutation fuzzer for jitnet's file readers: `read_idx`, `read_npz` and `write_idx`.

    python bench/fuzz_files.py --minutes 3 [--seed 0] [--failures DIR]

Builds valid IDX files (six type codes, 1-4 dimensions, plain, gzip, several members) and .npz
archives (model- and checkpoint-like, stored and deflate, plus a few bombs), stacks 1-3 random
mutations on each -- bit flips, interesting integers over header fields, truncation, deleted or
repeated chunks, splices, appended members or padding, and mutations of the payload *before*
compression so that the parsers behind gzip and deflate get fuzzed too -- and reads each result
in a worker process whose address space is capped at 2.5 GB. It counts:

- crash: any exception other than DataError, or the worker dying;
- hang: no answer within 10 s;
- wrong: a result that differs from what the bytes encode (IDX: decoded independently here;
  .npz: np.load), or a refusal whose message is not one line starting with the path;
- leftover: files other than the target after a `write_idx` call (valid or refused input).

Failing inputs are saved to ``--failures``. Exit status 1 if anything was found. Not collected by
pytest; not a benchmark in the timing sense.
"""

import argparse
import gzip
import io
import json
import math
import os
import random
import select
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDRESS_SPACE = 5 << 29  # 2.5 GiB
HANG_SECONDS = 10
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
INTERESTING = [0, 1, 2, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0xFFFF, 0x10000, 0x7FFFFFFF,
               0x80000000, 0xFFFFFFFF, 60000, 784, 10**9]


# ---- seeds ----


def idx_bytes(np, array):
    code = {np.dtype(v).newbyteorder("="): k for k, v in IDX_DTYPES.items()}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}i", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def idx_seeds(np, rng):
    seeds = []
    for dtype in ["u1", "i1", "i2", "i4", "f4", "f8"]:
        for ndim in range(1, 5):
            shape = tuple(rng.integers(1, 5, ndim))
            array = (rng.standard_normal(shape) * 100).astype(dtype)
            seeds.append(idx_bytes(np, array))
    from jitnet.data.datasets import load_mnist

    train, _ = load_mnist()
    seeds.append(idx_bytes(np, train.images[:50].reshape(50, 28, 28)))
    seeds.append(idx_bytes(np, train.labels[:300]))
    return seeds  # payloads; compression is one of the mutations


def npz_seeds(np, rng):
    model = {"format": np.array("jitnet-model"), "format_version": np.array(1),
             "sizes": np.array([8, 5, 3]), "activation": np.array("sigmoid"),
             "dtype": np.array("float64")}
    for l, (n_in, n_out) in enumerate([(8, 5), (5, 3)]):
        model[f"W{l}"] = rng.standard_normal((n_out, n_in))
        model[f"b{l}"] = rng.standard_normal(n_out)
    checkpoint = {f"net/{k}": v for k, v in model.items()}
    checkpoint.update({f"best/{k}": v for k, v in model.items()})
    checkpoint["state"] = np.frombuffer(json.dumps({"epoch": 3, "rate": 0.3}).encode(), np.uint8)
    odd = {"f": np.asfortranarray(np.arange(6, dtype=">i4").reshape(2, 3)),
           "b": np.array([True, False]), "s": np.array([b"ab", b""]), "e": np.zeros((0, 3)),
           "c": np.array([1j], np.complex64), "h": np.array([1.5], np.float16)}
    return [model, checkpoint, odd]


def zip_members(np, arrays):
    """{member name: .npy bytes}."""
    members = {}
    for name, array in arrays.items():
        buffer = io.BytesIO()
        np.save(buffer, array)
        members[name + ".npy"] = buffer.getvalue()
    return members


def zip_bytes(members, method):
    buffer = io.BytesIO()
    import zipfile
    import warnings

    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w", compression=method) as archive:
        warnings.simplefilter("ignore")
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def zeros_deflate(mib, prefix=b"", wbits=-15):
    compressor = zlib.compressobj(9, zlib.DEFLATED, wbits)
    head = compressor.compress(prefix) + compressor.flush(zlib.Z_FULL_FLUSH)
    block = compressor.compress(bytes(1 << 20)) + compressor.flush(zlib.Z_FULL_FLUSH)
    return head + block * mib + compressor.flush()


# ---- mutations ----


def mutate_bytes(r, data, others):
    data = bytearray(data)
    for _ in range(r.randint(1, 3)):
        op = r.randrange(9)
        if not data:
            data += bytes(r.randrange(256) for _ in range(r.randint(1, 8)))
        elif op == 0:  # bit flips
            for _ in range(r.randint(1, 8)):
                data[r.randrange(len(data))] ^= 1 << r.randrange(8)
        elif op == 1:  # interesting integer, either byte order, 1-8 bytes
            width = r.choice([1, 2, 4, 8])
            value = r.choice(INTERESTING + [r.getrandbits(8 * width)]) % (1 << 8 * width)
            at = r.randrange(len(data))
            data[at : at + width] = value.to_bytes(width, r.choice(["big", "little"]))
        elif op == 2:  # header-focused: the first 64 bytes
            at = r.randrange(min(64, len(data)))
            data[at] = r.choice([0, 0xFF, 0x7F, 0x80, 0x20, 0x41, r.randrange(256)])
        elif op == 3:
            del data[r.randrange(len(data)) :]
        elif op == 4:
            at = r.randrange(len(data))
            del data[at : at + r.randint(1, 64)]
        elif op == 5:  # repeat a chunk
            at = r.randrange(len(data))
            chunk = data[at : at + r.randint(1, 256)]
            data[at:at] = chunk * r.randint(1, 50)
        elif op == 6:  # splice with another seed
            other = r.choice(others)
            cut = r.randrange(len(data))
            data = data[:cut] + other[r.randrange(len(other) + 1) :]
        elif op == 7:
            data += r.choice([b"\0" * r.randint(1, 5000), b"\x1f\x8b", b"PK\x05\x06",
                              gzip.compress(b""), os.urandom(r.randint(1, 100))])
        else:
            at = r.randrange(len(data) + 1)
            data[at:at] = os.urandom(r.randint(1, 16))
    return bytes(data)


def idx_case(r, seeds):
    payload = r.choice(seeds)
    if r.random() < 0.7:
        payload = mutate_bytes(r, payload, seeds)
    style = r.choice(["plain", "gzip", "gzip", "members", "empty-members", "bomb"])
    if style == "plain":
        data = payload
    elif style == "gzip":
        data = gzip.compress(payload, compresslevel=r.randint(0, 9), mtime=0)
    elif style == "members":
        cut = r.randrange(len(payload) + 1)
        data = gzip.compress(payload[:cut], mtime=0) + gzip.compress(payload[cut:], mtime=0)
    elif style == "empty-members":
        data = gzip.compress(payload, mtime=0) + gzip.compress(b"", mtime=0) * r.randint(1, 70000)
    else:  # a header and far more zeros than it declares, or far more declared than held
        header = payload[: 4 + 4 * (payload[3] if len(payload) > 3 else 0)]
        deflated = zeros_deflate(r.choice([1, 64, 900, 2000]), header)
        data = b"\x1f\x8b\x08\x00\0\0\0\0\0\xff" + deflated + os.urandom(8)
    if r.random() < 0.5:
        data = mutate_bytes(r, data, seeds)
    return data


def npz_case(r, np, seeds):
    members = zip_members(np, r.choice(seeds))
    names = list(members)
    for _ in range(r.randint(0, 2)):  # damage members before zipping
        name = r.choice(names)
        content = members[name]
        if r.random() < 0.5 and len(content) >= 10:
            text = content[10 : 10 + struct.unpack("<H", content[8:10])[0]].decode("latin-1")
            text = text.replace(r.choice(["(", "'<f8'", "'<i8'", "False", "shape", "|b1", ")"]),
                                r.choice(["(99999999999999999999,", "'|O'", "'<U9999999'",
                                          "True", "sh", "(0, 9223372036854775807", "((((",
                                          "[('a', '<f8')]", ") * 40", "'<f16'"]), 1)
            text = text.encode("latin-1")
            content = content[:8] + struct.pack("<H", len(text)) + text + content[10 + len(text):]
        else:
            content = mutate_bytes(r, content, list(members.values()))
        members[name] = content
    if r.random() < 0.1:  # a deflate bomb member
        header = b"\x93NUMPY\x01\x00" + struct.pack("<H", 58) + (
            "{'descr': '|u1', 'fortran_order': False, 'shape': (%d,), }" % (r.choice(
                [64, 1 << 20, 1 << 30, 3 << 30]))).ljust(57).encode() + b"\n"
        members["bomb.npy"] = header  # placeholder; the payload is spliced in below
    method = r.choice([0, 8])
    data = zip_bytes(members, method)
    if "bomb.npy" in members and method == 8:
        import zipfile

        info = zipfile.ZipFile(io.BytesIO(data)).getinfo("bomb.npy")
        data = data  # the directory still says the small size: a bomb in disguise
        bomb = zeros_deflate(r.choice([1, 64, 900]), members["bomb.npy"])
        at = info.header_offset + 30 + len("bomb.npy") + len(info.extra or b"")
        data = data[:at] + bomb + data[at + info.compress_size :]
    if r.random() < 0.6:
        data = mutate_bytes(r, data, [zip_bytes(zip_members(np, s), 0) for s in seeds[:1]])
    return data


# ---- the worker: reads, checks against references, reports ----


def decode_idx(np, raw):
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
    return np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(shape)


def check_one(np, job):
    from jitnet.data.idx import DataError, read_idx, write_idx
    from jitnet.io.npzfile import read_npz

    path = job["path"]
    if job["kind"] == "write":
        directory = os.path.dirname(path)
        array = np.frombuffer(bytes.fromhex(job["data"]), job["dtype"]).reshape(job["shape"])
        try:
            write_idx(path, array)
            outcome, wrong = "ok", not np.array_equal(read_idx(path), array, equal_nan=True)
        except DataError:
            outcome, wrong = "error", False
            if os.path.exists(path):
                wrong = True  # a refused write must not create the file
        leftover = [n for n in os.listdir(directory) if n != os.path.basename(path)]
        return {"outcome": outcome, "wrong": wrong, "leftover": leftover}
    reader = read_idx if job["kind"] == "idx" else read_npz
    try:
        result = reader(path)
    except DataError as error:
        message = str(error)
        bad = "\n" in message or not message.startswith(path)
        return {"outcome": "error", "wrong": bad, "detail": message[:300]}
    except BaseException as error:  # noqa: BLE001 - that is what we are counting
        return {"outcome": "crash", "detail": f"{type(error).__name__}: {str(error)[:300]}"}
    with open(path, "rb") as file:
        raw = file.read()
    if job["kind"] == "idx":
        expected = decode_idx(np, raw)
        wrong = expected is None or result.shape != expected.shape or (
            result.tobytes() != expected.astype(result.dtype).tobytes())
    else:
        try:
            with np.load(path, allow_pickle=False) as archive:
                expected = {k: archive[k] for k in archive.files}
            wrong = list(expected) != list(result) or any(
                result[k].dtype != expected[k].dtype or result[k].shape != expected[k].shape
                or (result[k].view(np.uint8) != (expected[k].view(np.uint8) != 0)).any()
                if expected[k].dtype.kind == "b" else
                result[k].tobytes(order="A") != expected[k].tobytes(order="A")
                for k in expected)
        except Exception:  # noqa: BLE001 - np.load refuses what we read
            wrong = True
    return {"outcome": "ok", "wrong": bool(wrong)}


def worker():
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    import numpy as np

    for line in sys.stdin:
        job = json.loads(line)
        start = time.perf_counter()
        report = check_one(np, job)
        report["seconds"] = time.perf_counter() - start
        report["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(report), flush=True)


# ---- the driver ----


class Worker:
    def __init__(self):
        env = {**os.environ, "PYTHONPATH": ROOT, "OPENBLAS_NUM_THREADS": "1"}
        self.process = subprocess.Popen([sys.executable, __file__, "--worker"], env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, job):
        """The worker's report, or None if it hung or died (then it is replaced)."""
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], HANG_SECONDS)
        line = self.process.stdout.readline() if ready else ""
        if line:
            return json.loads(line)
        self.process.kill()
        self.process.wait()
        return {"outcome": "hang" if not ready else "crash", "detail": "worker died"
                if ready else f"no answer in {HANG_SECONDS} s"}

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--failures", default=os.path.join(tempfile.gettempdir(), "jitnet-fuzz"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    sys.path.insert(0, ROOT)
    import numpy as np

    r = random.Random(args.seed)
    rng = np.random.default_rng(args.seed)
    seeds_idx, seeds_npz = idx_seeds(np, rng), npz_seeds(np, rng)
    work = tempfile.mkdtemp(prefix="jitnet-fuzz-")
    os.makedirs(args.failures, exist_ok=True)
    counts = {k: {"cases": 0, "ok": 0, "error": 0, "crash": 0, "hang": 0, "wrong": 0,
                  "leftover": 0} for k in ("idx", "npz", "write")}
    slowest, peak, found, slow = {}, 0.0, [], []
    worker_process = Worker()
    deadline = time.monotonic() + 60 * args.minutes
    n = 0
    try:
        while time.monotonic() < deadline:
            n += 1
            kind = r.choices(["idx", "npz", "write"], [5, 5, 1])[0]
            job = {"kind": kind, "path": os.path.join(work, f"case{n % 2}.{kind}")}
            if kind == "write":
                directory = os.path.join(work, f"w{n}")
                os.makedirs(directory)
                dtype = r.choice(["u1", "i1", ">i2", "<i4", "f4", ">f8", "i8", "u2", "?"])
                ndim = r.choice([0, 1, 2, 3, 33])
                shape = [r.randint(0, 4) if ndim < 33 else 1 for _ in range(ndim)]
                size = math.prod(shape) * np.dtype(dtype).itemsize
                job.update(path=os.path.join(directory, r.choice(["a.idx", "a.gz"])),
                           dtype=dtype, shape=shape, data=os.urandom(size).hex())
                content = None
            else:
                content = idx_case(r, seeds_idx) if kind == "idx" else npz_case(r, np, seeds_npz)
                with open(job["path"], "wb") as file:
                    file.write(content)
            report = worker_process.run(job)
            if report["outcome"] in ("hang", "crash") and report.get("detail", "").startswith(
                    ("worker died", "no answer")):
                worker_process = Worker()
            tally = counts[kind]
            tally["cases"] += 1
            tally[report["outcome"]] += 1
            tally["wrong"] += bool(report.get("wrong"))
            tally["leftover"] += bool(report.get("leftover"))
            seconds = report.get("seconds", HANG_SECONDS)
            slowest[kind] = max(slowest.get(kind, 0.0), seconds)
            peak = max(peak, report.get("maxrss_mb", 0.0))
            if seconds > 1.0:
                saved = os.path.join(args.failures, f"slow-{kind}-{n}")
                with open(saved, "wb") as file:
                    file.write(content or b"")
                slow.append(f"{kind} case {n}: {seconds:.2f} s, {report['outcome']} -> {saved}")
            if report["outcome"] in ("crash", "hang") or report.get("wrong") or report.get(
                    "leftover"):
                saved = os.path.join(args.failures, f"{kind}-{n}")
                if content is not None:
                    with open(saved, "wb") as file:
                        file.write(content)
                found.append(f"{kind} case {n}: {report} -> {saved}")
            if kind == "write":
                shutil.rmtree(os.path.dirname(job["path"]))
    finally:
        worker_process.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'reader':8s} {'cases':>7s} {'ok':>7s} {'error':>7s} {'crash':>6s} {'hang':>5s} "
          f"{'wrong':>6s} {'leftover':>8s} {'slowest':>8s}")
    for kind, tally in counts.items():
        print(f"{kind:8s} {tally['cases']:7d} {tally['ok']:7d} {tally['error']:7d} "
              f"{tally['crash']:6d} {tally['hang']:5d} {tally['wrong']:6d} "
              f"{tally['leftover']:8d} {slowest.get(kind, 0):7.2f}s")
    print(f"worker peak RSS {peak:.0f} MB (address space capped at {ADDRESS_SPACE >> 20} MB)")
    for line in found[:20] + slow[:10]:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
