"""Mutation fuzzer for jitnet's model files and checkpoints, through every reader a user meets.

    python bench/fuzz_models.py --minutes 3 [--seed 0] [--failures DIR]

Seeds are valid files: models saved by `Network.save` (several sizes, dtypes, recipes, with and
without an input scale, format versions 1 to 3), a training run's model file (with its JSON
description) and checkpoints of tiny runs (with and without a best network, raw pixels or not).
Each case damages one: entries replaced by odd arrays (wrong dtypes, shapes, huge or infinite
sizes and versions, pickles, headers claiming terabytes), entries deleted or added, JSON leaves
replaced by nasty values (integers beyond float range, deep nesting, NUL, wrong generator
states), JSON bytes spliced, ``.npy`` header text edited; then zips it stored or deflated,
sometimes with a deflate bomb inside, and sometimes flips, cuts or splices the archive's bytes.
Every case is read in a worker process whose address space is capped at 2.5 GiB by one of:

- model:    `Network.load`;
- evaluate: `jitnet.training.load_model`, the loader of ``jitnet evaluate`` and ``predict``,
            and for every tenth case ``jitnet evaluate MODEL --json`` itself (exit 0 or 2);
- resume:   `jitnet.training.load_checkpoint`, the reader of ``train --resume``, then for an
            accepted checkpoint one more epoch of `resume_training` in a copy of its folder.

It counts crash (an exception other than ModelFileError / CheckpointError, a CLI exit other
than 0 or 2, or the worker dying), hang (no answer within 10 s), wrong (an accepted file whose
network differs from what np.load decodes from the members used -- a damaged member no reader
uses is not read -- or a refusal that is not one line naming the file once, or mentions
allow_pickle), and leftover (files left beside the target, e.g. a checkpoint's temporary).
Failing inputs are saved to ``--failures``. Exit status 1 if anything was found. Not collected
by pytest.
"""

import argparse
import io
import json
import os
import random
import select
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
from fuzz_files import ADDRESS_SPACE, mutate_bytes, zeros_deflate  # noqa: E402

HANG_SECONDS = 10
META, INFO = "meta", "jitnet_train_info"


# ---- seeds ----


def tiny_sets(np, seed=0):
    """60 training and 20 test images of 4x4 pixels in 3 classes."""
    from jitnet.data.datasets import Dataset

    rng = np.random.default_rng(seed)

    def make(n, name):
        labels = rng.integers(0, 3, n)
        images = (rng.integers(0, 60, (n, 16)) + 60 * labels[:, None]).astype(np.uint8)
        return Dataset(images, labels, (4, 4), 3, name)

    return make(60, "train"), make(20, "test")


def write_dataset(np, folder, sets):
    from jitnet import write_idx

    os.makedirs(folder)
    for prefix, data in zip(("train", "t10k"), sets):
        write_idx(os.path.join(folder, f"{prefix}-images-idx3-ubyte"),
                  data.images.reshape(len(data), 4, 4))
        write_idx(os.path.join(folder, f"{prefix}-labels-idx1-ubyte"),
                  data.labels.astype(np.uint8))


def arrays_of(np, path):
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def seeds(np, work):
    """[(kind, {name: array})]: kind "model" or "checkpoint"."""
    from jitnet import Network
    from jitnet.training import TrainConfig, prepare_data, run_training, save_model

    found = []
    for sizes, dtype, activation, loss, scale in [
        ([784, 30, 10], "float64", "sigmoid", "squared", None),
        ([784, 30, 10], "float32", "sigmoid", "squared", 1.0),
        ([16, 5, 3], "float64", "tanh", "cross_entropy", 0.5),
        ([16, 4, 4, 3], "float32", "relu", "squared", None),
        ([1, 1], "float64", "scaled_tanh", "squared", None),
    ]:
        net = Network(sizes, activation=activation, dtype=dtype, loss=loss, seed=0)
        net.input_scale = scale
        found.append(("model", net.to_arrays()))
    v1 = {k: v for k, v in found[0][1].items() if k not in ("loss", "init", "output_activation")}
    found.append(("model", {**v1, "format_version": np.array(1)}))
    sets = tiny_sets(np)
    for name, raw, epochs in (("scaled", False, 3), ("raw", True, 2), ("early", False, 1)):
        config = TrainConfig(hidden=(5,), epochs=epochs, eval_every=2, validation=12,
                             raw_pixels=raw, checkpoint_every=1, rate=0.3 / 255 ** raw)
        result = run_training(config, os.path.join(work, name), splits=prepare_data(config, *sets))
        found.append(("checkpoint", arrays_of(np, os.path.join(result.run_dir, "checkpoint.npz"))))
        if raw:
            found.append(("model", arrays_of(np, result.model_path)))
    path = os.path.join(work, "described.npz")
    save_model(path, Network([16, 5, 3], seed=1), {"input_scale": 1.0, "config": {"hidden": [5]}})
    found.append(("model", arrays_of(np, path)))
    return found


# ---- mutations ----

NASTY_JSON = ["1" + "0" * 400, "-1" + "0" * 400, "1" + "0" * 5000, "1e999", "-1e999", "NaN",
              "[" * 3000 + "]" * 3000, '"\\u0000"', '"a\\u0000b"', "null", "true", "-1", "0",
              "18446744073709551616", "[]", "{}", '"PCG64"', '"MT19937"', '"float32"',
              '{"state": 1}', "[" * 50 + "1" + "]" * 50, '"' + "x" * 5000 + '"', "2.5", "1e-320"]


def odd_arrays(np, r):
    """An array (or raw .npy bytes) that a model or checkpoint entry should not hold."""
    choices = [
        np.array(0.0), np.array(np.nan), np.array(np.inf), np.array(2**63 - 1), np.array(-1),
        np.array(10**15), np.array("0.0"), np.array("float32"), np.array("sigmoid"),
        np.array("x" * 5000), np.array(b"float64"), np.array([]), np.zeros((3, 2)),
        np.array([1e39, -1e39]), np.array([True, False]), np.array([1j]), np.array([6, 10**15, 3]),
        np.array([2**24, 1]), np.array([16, -5, 3]), np.ones(2000, np.int64), np.array(3),
        np.array(0.5), np.zeros(7, np.uint8), np.full((5, 16), np.nan), np.zeros((5, 16), ">f4"),
        np.asfortranarray(np.ones((5, 16))), np.zeros((5, 16), np.float16),
        np.frombuffer(b'{"input_scale": 2}', np.uint8), np.frombuffer(b"[[[", np.uint8),
        np.array([None, {"a": 1}], dtype=object),
    ]
    pick = r.randrange(len(choices) + 3)
    if pick < len(choices):
        return choices[pick]
    text = "{'descr': '%s', 'fortran_order': False, 'shape': %s, }" % r.choice([
        ("<f8", "(10**12,)"), ("<f8", "(1000000000000, 16)"), ("|u1", "(300000000,)"),
        ("<f4", "(5, 16)"), ("|O", "(3,)"), ("<U99999999", "()")])
    text = text.replace("10**12", str(10**12)).encode() + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text


def npy(np, value):
    if isinstance(value, bytes):
        return value
    buffer = io.BytesIO()
    np.save(buffer, value, allow_pickle=value.dtype.kind == "O")
    return buffer.getvalue()


def mutate_json(np, r, array):
    """The JSON bytes of ``array`` with a leaf replaced by a nasty literal, or bytes spliced."""
    text = array.tobytes().decode("utf-8", "replace")
    if r.random() < 0.3:
        at, junk = r.randrange(len(text) + 1), NASTY_JSON + ["{", "]", ",", "\\", "\x00"]
        text = text[:at] + r.choice(junk) + text[at + r.randint(0, 8) :]
    else:
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):  # already damaged: splice it instead
            return mutate_json(np, random.Random(r.random()), np.frombuffer(b"{}", np.uint8))
        leaves = []

        def walk(node, path):
            leaves.append(path)
            items = node.items() if isinstance(node, dict) else (
                enumerate(node) if isinstance(node, list) and len(node) < 40 else ())
            for key, child in items:
                walk(child, path + (key,))

        walk(value, ())
        path = r.choice(leaves[1:] or [()])
        marker = "@@nasty@@"
        if not path:
            return np.frombuffer(r.choice(NASTY_JSON).encode(), np.uint8)
        target = value
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = marker
        text = json.dumps(value).replace(json.dumps(marker), r.choice(NASTY_JSON))
    return np.frombuffer(text.encode(), np.uint8)


def case_bytes(np, r, kind, arrays):
    arrays = dict(arrays)
    names = sorted(arrays)
    for _ in range(r.randint(0, 3)):
        name = r.choice(names + ["input_scale", "net/input_scale", "extra", "W9"])
        action = r.random()
        if name in (META, INFO) and isinstance(arrays.get(name), np.ndarray) and action < 0.7:
            arrays[name] = mutate_json(np, r, arrays[name])
        elif action < 0.15:
            arrays.pop(name, None)
        else:
            arrays[name] = odd_arrays(np, r)
    members = {name + ".npy": npy(np, value) for name, value in arrays.items()}
    if r.random() < 0.2:  # edit one .npy header's text
        name = r.choice(list(members))
        content = members[name]
        if content[6:8] == b"\x01\x00":
            n = int.from_bytes(content[8:10], "little")
            text = content[10 : 10 + n].decode("latin-1")
            text = text.replace(r.choice(["(", "'<f8'", "False", "shape", ")", "'<i8'"]),
                                r.choice(["(99999999999999999999,", "'|O'", "True", ") * 40",
                                          "(0, 9223372036854775807", "'<f16'", "(("]), 1)
            text = text.encode("latin-1")
            members[name] = content[:8] + len(text).to_bytes(2, "little") + text + content[10 + n:]
    method = r.choice([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_DEFLATED])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=method) as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    data = buffer.getvalue()
    if method == zipfile.ZIP_DEFLATED and r.random() < 0.1:  # a bomb in a member's place
        info = r.choice(zipfile.ZipFile(io.BytesIO(data)).infolist())
        at = info.header_offset + 30 + len(info.filename) + len(info.extra or b"")
        bomb = zeros_deflate(r.choice([1, 64, 600]), members[info.filename][:128])
        data = data[:at] + bomb + data[at + info.compress_size :]
    if r.random() < 0.4:
        data = mutate_bytes(r, data, [data])
    return data


# ---- the worker ----


def decoded_network(np, arrays, prefix=""):
    """(sizes, dtype, weight bytes per layer, input scale or None) decoded from np.load's arrays,
    independently of jitnet's reader."""
    get = lambda key: arrays[prefix + key]  # noqa: E731
    dtype = str(get("dtype"))
    sizes = [int(n) for n in get("sizes")]
    layers = [np.asarray(get(f"{k}{l}")).astype(dtype).tobytes()
              for l in range(len(sizes) - 1) for k in "Wb"]
    scale = None
    if int(get("format_version")) >= 3 and prefix + "input_scale" in arrays:
        scale = float(get("input_scale"))
    elif not prefix and INFO in arrays:
        scale = json.loads(arrays[INFO].tobytes()).get("input_scale")
    return sizes, dtype, layers, None if scale is None else float(scale)


def network_bytes(net):
    return [part.tobytes() for W, b in net.get_weights() for part in (W, b)]


def refusal(error, path):
    """Whether a refusal breaks the rules: one line, naming the file once, no pickle advice."""
    message = str(error)
    return "\n" in message or message.count(path) != 1 or "allow_pickle" in message


def check_one(np, job):
    from jitnet import Network
    from jitnet.engine.network import ModelFileError
    from jitnet.training import CheckpointError, load_checkpoint, load_model, resume_training

    path, kind = job["path"], job["kind"]
    folder = os.path.dirname(path)
    before = sorted(os.listdir(folder))
    report = {"outcome": "ok", "wrong": False}
    try:
        if kind == "model":
            net = Network.load(path)
        elif kind == "evaluate":
            net, info = load_model(path)
        else:
            state = load_checkpoint(path)
            net = state.net
    except (ModelFileError, CheckpointError) as error:
        report.update(outcome="error", wrong=refusal(error, path), detail=str(error)[:300])
    except BaseException as error:  # noqa: BLE001 - that is what we are counting
        return {"outcome": "crash", "detail": f"{type(error).__name__}: {str(error)[:300]}"}
    if report["outcome"] == "ok":
        try:
            with np.load(path, allow_pickle=False) as stored:  # only the members used
                prefix = "net/" if META in stored else ""
                sizes, dtype, layers, scale = decoded_network(np, stored, prefix)
            if prefix:  # a checkpoint: its configuration says the scale
                scale = load_checkpoint(path).config.input_scale
            wrong = (net.sizes, net.dtype.name, network_bytes(net), net.input_scale) != (
                sizes, dtype, layers, scale)
        except Exception as error:  # noqa: BLE001 - np.load refuses what we read
            wrong, report["detail"] = True, f"reference: {type(error).__name__}: {error}"[:300]
        report["wrong"] = bool(wrong)
        if kind == "resume" and not wrong:
            report.update(resume_once(np, job, state, resume_training))
    if kind == "evaluate" and job.get("cli"):
        report.update(run_cli(job, report))
    report["leftover"] = sorted(set(os.listdir(folder)) - set(before))
    return report


def resume_once(np, job, state, resume_training):
    """One more epoch of an accepted checkpoint in a copy of its run folder: the documented
    error or a finished run, and nothing left beside the run's own files."""
    from jitnet.training import CheckpointError

    run = os.path.join(os.path.dirname(job["path"]), "run")
    os.makedirs(run)
    try:
        shutil.copy(job["path"], os.path.join(run, "checkpoint.npz"))
        try:
            resume_training(os.path.join(run, "checkpoint.npz"),
                            {"epochs": state.epoch + 1, "checkpoint_every": 1}, data=tiny_sets(np))
        except CheckpointError as error:
            if refusal(error, os.path.join(run, "checkpoint.npz")):
                return {"wrong": True, "detail": f"resume: {error}"[:300]}
        except BaseException as error:  # noqa: BLE001
            return {"outcome": "crash", "detail": f"resume: {type(error).__name__}: {error}"[:300]}
        # A damaged configuration may name --output or --report files: they land in the
        # worker's own working folder, which is emptied after each case.
        temporary = [n for folder in (run, os.getcwd()) for n in os.listdir(folder)
                     if n.startswith(".tmp-")]
        return {"leftover_run": temporary} if temporary else {}
    finally:
        shutil.rmtree(run, ignore_errors=True)
        for name in os.listdir(os.getcwd()):
            if os.path.isdir(name):
                shutil.rmtree(name)
            else:
                os.remove(name)


def run_cli(job, report):
    from click.testing import CliRunner

    from jitnet.cli.main import cli

    result = CliRunner().invoke(cli, ["evaluate", job["path"], "--data", job["data"], "--json"])
    lines = result.stderr.strip().splitlines()
    if result.exit_code == 2 and len(lines) == 1 and lines[0].startswith("Error: "):
        return {}
    if result.exit_code == 0 and report["outcome"] == "ok":
        return {}
    return {"outcome": "crash", "detail": f"cli exit {result.exit_code}: {result.output[-300:]}"}


def worker():
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))
    import numpy as np

    from jitnet.cli.pictures import RunPictures

    RunPictures.curve = RunPictures.final = lambda *args, **kwargs: None  # matplotlib: not ours

    for line in sys.stdin:
        job = json.loads(line)
        start = time.perf_counter()
        report = check_one(np, job)
        report["seconds"] = time.perf_counter() - start
        report["maxrss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(json.dumps(report), flush=True)


# ---- the driver ----


class Worker:
    def __init__(self, cwd):
        env = {**os.environ, "PYTHONPATH": ROOT, "OPENBLAS_NUM_THREADS": "1"}
        script = os.path.join(BENCH, "fuzz_models.py")
        self.process = subprocess.Popen([sys.executable, script, "--worker"], env=env, cwd=cwd,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def run(self, job):
        """The worker's report, or a hang or crash (then the worker is replaced)."""
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], HANG_SECONDS)
        line = self.process.stdout.readline() if ready else ""
        if line:
            return json.loads(line)
        self.process.kill()
        self.process.wait()
        return {"outcome": "crash" if ready else "hang", "dead": True,
                "detail": "worker died" if ready else f"no answer in {HANG_SECONDS} s"}

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--failures", default=os.path.join(tempfile.gettempdir(),
                                                           "jitnet-fuzz-models"))
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker()
    sys.path.insert(0, ROOT)
    import numpy as np

    r = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="jitnet-fuzz-models-")
    os.makedirs(args.failures, exist_ok=True)
    kinds = ("model", "evaluate", "resume")
    counts = {k: dict.fromkeys(("cases", "ok", "error", "crash", "hang", "wrong", "leftover"), 0)
              for k in kinds}
    slowest, peak, found = {}, 0.0, []
    worker_process = None
    try:
        all_seeds = seeds(np, os.path.join(work, "seeds"))
        data = os.path.join(work, "data")
        write_dataset(np, data, tiny_sets(np))
        cwd = os.path.join(work, "cwd")  # where relative paths in damaged configurations go
        os.makedirs(cwd)
        worker_process = Worker(cwd)
        deadline, n = time.monotonic() + 60 * args.minutes, 0
        while time.monotonic() < deadline:
            n += 1
            kind = r.choice(kinds)
            # Network.load and evaluate read checkpoints too: a third of their cases are ones.
            wanted = "checkpoint" if kind == "resume" or r.random() < 0.3 else "model"
            pool = [arrays for k, arrays in all_seeds if k == wanted]
            content = case_bytes(np, r, kind, r.choice(pool))
            case_dir = os.path.join(work, f"case{n}")
            os.makedirs(case_dir)
            job = {"kind": kind, "path": os.path.join(case_dir, "model.npz"), "data": data,
                   "cli": kind == "evaluate" and n % 10 == 0}
            with open(job["path"], "wb") as file:
                file.write(content)
            report = worker_process.run(job)
            if report.get("dead"):
                worker_process = Worker(cwd)
            tally = counts[kind]
            tally["cases"] += 1
            tally[report["outcome"]] += 1
            tally["wrong"] += bool(report.get("wrong"))
            leftover = report.get("leftover") or report.get("leftover_run")
            tally["leftover"] += bool(leftover)
            slowest[kind] = max(slowest.get(kind, 0.0), report.get("seconds", HANG_SECONDS))
            peak = max(peak, report.get("maxrss_mb", 0.0))
            if report["outcome"] in ("crash", "hang") or report.get("wrong") or leftover:
                saved = os.path.join(args.failures, f"{kind}-{n}.npz")
                with open(saved, "wb") as file:
                    file.write(content)
                found.append(f"{kind} case {n}: {report} -> {saved}")
            shutil.rmtree(case_dir)
    finally:
        if worker_process is not None:
            worker_process.close()
        shutil.rmtree(work, ignore_errors=True)
    print(f"{'reader':9s} {'cases':>6s} {'ok':>6s} {'error':>6s} {'crash':>6s} {'hang':>5s} "
          f"{'wrong':>6s} {'leftover':>8s} {'slowest':>8s}")
    for kind, tally in counts.items():
        print(f"{kind:9s} {tally['cases']:6d} {tally['ok']:6d} {tally['error']:6d} "
              f"{tally['crash']:6d} {tally['hang']:5d} {tally['wrong']:6d} "
              f"{tally['leftover']:8d} {slowest.get(kind, 0):7.2f}s")
    print(f"worker peak RSS {peak:.0f} MB (address space capped at {ADDRESS_SPACE >> 20} MB)")
    for line in found[:20]:
        print(line)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
