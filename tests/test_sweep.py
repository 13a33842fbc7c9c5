"""jitnet.sweep: search spaces, trials, the Dask runner (on real LocalClusters) and the command.

The trials are tiny (2,000 training images of which 500 held out, 1,000 test images, 16-48 hidden
units, 1-2 epochs) so that the file stays within ~30 s; the kill test's one trial is longer, so
that a worker can be killed in the middle of it.
"""

import json
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from jitnet.sweep import (
    Range,
    SweepError,
    SweepInterrupted,
    SweepReporter,
    parse_space,
    run_sweep,
    run_trial,
    train_command,
    trial_key,
)
from jitnet.sweep import runner
from jitnet.sweep.command import sweep_command

distributed = pytest.importorskip("distributed")

ROOT = Path(__file__).resolve().parents[1]
TINY = {"epochs": "2", "train_limit": "2000", "test_limit": "1000", "validation": "500"}


def tiny_trial(**changes):
    return {"hidden": [16], "rate": 0.3, "epochs": 2, "train_limit": 2000, "test_limit": 1000,
            "validation": 500, **changes}


def model_arrays(path):
    """The network arrays of a model file (not its description, which names its paths)."""
    with np.load(path) as f:
        return {k: f[k] for k in f.files if k != "jitnet_train_info"}


def same_arrays(a, b):
    return sorted(a) == sorted(b) and all(np.array_equal(a[k], b[k]) for k in a)


def run_alone(argv):
    """Run ``python argv...`` in a new process of this tree, as a user running a trial alone
    would. (A new process, like the workers, loads the kernels from Numba's cache: kernels
    compiled in the process itself may differ in the last bits, see warm_up.)"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, *argv], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def cluster():
    """Two single-thread worker processes, as run_sweep's own LocalCluster has."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as local:
        yield local


# -- search spaces ----------------------------------------------------------------------------


def test_grid_lists_layers_and_seeds():
    space = parse_space({"hidden": ["100,300", "500x150"], "--rate": "0.1,1", "seeds": "2",
                         "epochs": "3", "no-shuffle": None, "raw-pixels": [None]})
    assert space.size() == 12
    assert space.swept() == ["hidden", "rate", "seed"]
    trials = space.trials()
    assert len(trials) == 12
    # Seed outermost: every configuration at seed 0 first.
    assert [t["seed"] for t in trials] == [0] * 6 + [1] * 6
    assert trials[0] == {"hidden": [100], "rate": 0.1, "epochs": 3, "shuffle": False,
                         "raw_pixels": True, "seed": 0}
    assert [t["hidden"] for t in trials[:6:2]] == [[100], [300], [500, 150]]


def test_toml_file_and_command_line_override(tmp_path):
    path = tmp_path / "space.toml"
    path.write_text('hidden = [100, [500, 150], "16x8"]\nrate = "0.1,0.3"\nseeds = 2\n'
                    'epochs = 3\ntrain-limit = "none"\nshuffle = false\n')
    space = parse_space({"rate": "0.5"}, path)
    assert space.dims["hidden"] == ([100], [500, 150], [16, 8])
    assert space.dims["rate"] == (0.5,)
    assert space.dims["train_limit"] == (None,)
    assert space.dims["shuffle"] == (False,)
    assert space.seeds == 2 and space.size() == 6


def test_random_draws_are_reproducible_and_in_range():
    space = parse_space({"rate": "0.01:1", "hidden": "16:512,300", "epochs": "1:5",
                         "random_seed": "3"})
    assert isinstance(space.dims["rate"][0], Range) and space.dims["rate"][0].log
    first, again = space.trials(random=40), space.trials(random=40)
    assert first == again
    assert first != parse_space({"rate": "0.01:1", "random_seed": "4"}).trials(random=40)
    rates = [t["rate"] for t in first]
    assert all(0.01 <= r <= 1 for r in rates) and len(set(rates)) > 20
    assert all(r == float(f"{r:.3g}") for r in rates)  # 3 significant digits
    assert all(1 <= t["epochs"] <= 5 and isinstance(t["epochs"], int) for t in first)
    sizes = [t["hidden"][0] for t in first]
    assert all(16 <= h <= 512 for h in sizes) and 300 in sizes and len(set(sizes)) > 5
    # Log-uniform: about as many draws below 0.1 as above (uniform would put 91% above).
    assert 10 <= sum(r < 0.1 for r in rates) <= 30


@pytest.mark.parametrize(
    "options, words",
    [
        ({"hiden": "300"}, ["unknown option --hiden", "--rate", "--train-limit"]),
        ({"checkpoint-dir": "x"}, ["the sweep sets --checkpoint-dir"]),
        ({"rate": ""}, ["--rate", "empty value"]),
        ({"rate": "0.1,"}, ["--rate", "empty value"]),
        ({"rate": []}, ["--rate", "empty list"]),
        ({"rate": "fast"}, ["--rate", "'fast' is not a number"]),
        ({"rate": "-1"}, ["--rate -1.0", "positive"]),
        ({"hidden": "0"}, ["--hidden 0", "positive"]),
        ({"hidden": "300x"}, ["--hidden", "empty"]),
        ({"epochs": "2.5"}, ["--epochs", "not an integer"]),
        ({"shuffle": "maybe"}, ["--shuffle", "not true or false"]),
        ({"rate": "1:0.1"}, ["--rate", "LOW < HIGH"]),
        ({"rate": "0:1"}, ["--rate", "log-uniformly", "positive"]),
        ({"seed": "1,2", "seeds": "3"}, ["seed", "seeds", "not both"]),
        ({"seeds": "0"}, ["--seeds", "at least 1"]),
        ({"no-rate": None}, ["unknown option --no-rate"]),
        ({"dtype": "float16"}, ["--dtype float16", "float64 or float32"]),
    ],
)
def test_bad_options_are_one_line_errors(options, words):
    with pytest.raises(SweepError) as info:
        parse_space(options)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_range_needs_random():
    space = parse_space({"rate": "0.01:1"})
    with pytest.raises(SweepError, match="--rate: a range LOW:HIGH .* --random N"):
        space.trials()


@pytest.mark.parametrize(
    "text, words",
    [
        ("rate = [0.1,\n", ["not valid TOML"]),
        ("[sweep]\nrate = 0.1\n", ["[sweep] tables are not used"]),
        ("rate = [[0.1]]\n", ["rate in", "not a valid value"]),
        ("hidden = []\n", ["empty list"]),
        ("speed = 3\n", ["unknown option --speed"]),
    ],
)
def test_bad_toml_files(tmp_path, text, words):
    path = tmp_path / "space.toml"
    path.write_text(text)
    with pytest.raises(SweepError) as info:
        parse_space({}, path)
    for word in words:
        assert word in str(info.value)
    with pytest.raises(SweepError, match="--config .*missing.toml: cannot read it"):
        parse_space({}, tmp_path / "missing.toml")


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rates=st.lists(st.floats(0.001, 10, allow_nan=False), min_size=1, max_size=4),
    epochs=st.lists(st.integers(1, 50), min_size=1, max_size=3),
    seeds=st.integers(1, 3),
)
def test_grid_is_the_product_of_the_lists(rates, epochs, seeds):
    space = parse_space({"rate": ",".join(map(repr, rates)),
                         "epochs": ",".join(map(str, epochs)), "seeds": str(seeds)})
    trials = space.trials()
    assert len(trials) == space.size() == len(rates) * len(epochs) * seeds
    assert {t["rate"] for t in trials} == set(rates)
    assert {t["epochs"] for t in trials} == set(epochs)


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="0123456789.,:x -e", max_size=12))
@example("1e400")
@example(",")
def test_any_text_gives_a_space_or_the_documented_error(text):
    for name in ("rate", "hidden", "epochs"):
        try:
            space = parse_space({name: text})
        except SweepError as exc:
            assert "\n" not in str(exc) and f"--{name}" in str(exc)
        else:
            assert all(len(items) >= 1 for items in space.dims.values())


# -- one trial --------------------------------------------------------------------------------


def test_trial_key_ignores_defaults_spelling_and_checkpoint_cadence():
    base = trial_key({"hidden": [300], "rate": 0.3})
    assert base == trial_key({}) == trial_key({"rate": 0.3, "checkpoint_every": 5})
    assert trial_key({"rate": 1}) == trial_key({"rate": 1.0})
    assert trial_key({"seed": 1}) != base != trial_key({"hidden": [300, 10]})
    assert train_command({"hidden": [500, 150], "rate": 0.1, "shuffle": False}) == \
        "python cli.py train --hidden 500,150 --rate 0.1 --no-shuffle"


def test_run_trial_alone_writes_its_folder_and_is_not_rerun(tmp_path):
    result = run_trial(tiny_trial(), tmp_path / "t")
    assert result["status"] == "finished" and result["key"] == trial_key(tiny_trial())
    assert 0 < result["val_error"] < 0.5 and 0 < result["test_error"] < 0.5
    assert result["epochs_completed"] == 2 and result["resumed_from"] is None
    stored = json.loads((tmp_path / "t" / "result.json").read_text())
    assert stored == result
    report = json.loads((tmp_path / "t" / "report.json").read_text())
    assert report["best_val_error"] == result["val_error"]
    assert (tmp_path / "t" / "model.npz").exists()
    stamp = (tmp_path / "t" / "result.json").stat().st_mtime_ns
    assert run_trial(tiny_trial(), tmp_path / "t") == result
    assert (tmp_path / "t" / "result.json").stat().st_mtime_ns == stamp


def test_failing_trial_is_recorded_with_one_line(tmp_path):
    result = run_trial(tiny_trial(train_limit=400), tmp_path / "bad")
    assert result["status"] == "failed" and result["val_error"] is None
    assert "--validation 500 leaves no samples" in result["error"]
    assert json.loads((tmp_path / "bad" / "result.json").read_text())["status"] == "failed"
    with pytest.raises(SweepError, match="unknown option --speed"):
        run_trial({"speed": 3}, tmp_path / "x")


def _record(key, status, val_error=None, **options):
    return {"key": key, "status": status, "options": {"hidden": [16], "rate": 0.3, **options},
            "val_error": val_error, "test_error": None if val_error is None else val_error + 0.01,
            "best_epoch": 1, "epochs_completed": 1, "stop_reason": "epochs", "seconds": 1.0,
            "resumed_from": None, "note": None, "error": None if val_error else "boom",
            "folder": f"/x/{key}"}


def test_results_files_and_plot(tmp_path, monkeypatch):
    """finish() sorts nothing itself, writes the three tables, and draws the plot through
    jitnet.plots.sweep_plot when it imports (a stand-in module here), else notes why not."""
    import types

    from jitnet.sweep.results import finish, format_table, sort_records

    records = sort_records([_record("b", "finished", 0.2, rate=1.0),
                            _record("c", "failed"), _record("a", "finished", 0.1, rate=0.1)])
    assert [r["key"] for r in records] == ["a", "b", "c"]
    calls = []
    plots = types.ModuleType("jitnet.plots")
    plots.sweep_plot = lambda results, params, path: calls.append((results, params, path))
    monkeypatch.setitem(sys.modules, "jitnet.plots", plots)
    result = finish(tmp_path, records, ["rate"], SweepReporter(), ran=3)
    assert result.best["key"] == "a" and result.best_command.endswith("--hidden 16 --rate 0.1")
    assert [c[0] for c in calls] == [records[:2]] and calls[0][1:] == (["rate"],
                                                                       tmp_path / "val_error.png")
    assert result.files["plot"] == tmp_path / "val_error.png" and not result.notes
    table = format_table(result).splitlines()
    assert [line.split()[:3] for line in table[1:]] == [["1", "0.1", "10.00%"],
                                                        ["2", "1", "20.00%"], ["3", "0.3", "-"]]
    assert table[3].endswith("failed: boom")
    csv_lines = (tmp_path / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("key,status,rate,val_error") and csv_lines[1].startswith("a,")
    assert json.loads((tmp_path / "results.json").read_text())["trials"] == records

    def broken(results, params, path):
        raise RuntimeError("no backend")

    plots.sweep_plot = broken
    result = finish(tmp_path, records, ["rate"], SweepReporter())
    assert "plot" not in result.files and result.notes == ["no plot: RuntimeError: no backend"]
    monkeypatch.setitem(sys.modules, "jitnet.plots", None)
    result = finish(tmp_path, records, ["rate"], SweepReporter())
    assert result.notes[0].startswith("no plot: jitnet.plots.sweep_plot cannot be imported")


# -- run_sweep's checks, before any trial runs ------------------------------------------------


def test_without_dask_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(SweepError, match=r'pip install "jitnet\[sweep\]"'):
        run_sweep(parse_space(TINY), tmp_path)


def test_large_space_needs_yes(tmp_path):
    space = parse_space({"hidden": ",".join(str(h) for h in range(10, 111))})
    with pytest.raises(SweepError, match="101 trials .more than 100.: pass --yes"):
        run_sweep(space, tmp_path)
    assert not (tmp_path / "trials").exists()


@pytest.mark.parametrize(
    "scheduler, workers, words",
    [
        ("tcp://127.0.0.1:{port}", None, "cannot connect"),
        ("nonsense://127.0.0.1:1", None, "not a scheduler address"),
        ("127.0.0.1:notaport", None, "not a scheduler address"),
        ("tcp://127.0.0.1:{port}", 2, "--workers sizes a local cluster"),
    ],
)
def test_bad_scheduler_fails_fast(tmp_path, monkeypatch, scheduler, workers, words):
    import socket

    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(runner, "CONNECT_TIMEOUT", "2s")
    start = time.perf_counter()
    with pytest.raises(SweepError, match=words):
        run_sweep(parse_space(TINY), tmp_path, scheduler=scheduler.format(port=port),
                  workers=workers)
    assert time.perf_counter() - start < 10


def test_command_errors_are_one_line_exit_2(tmp_path):
    result = CliRunner().invoke(sweep_command, ["--out", str(tmp_path), "--hiden", "3"])
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: unknown option --hiden;")
    assert result.stderr.count("\n") == 1
    result = CliRunner().invoke(sweep_command, ["--out", str(tmp_path), "stray"])
    assert result.exit_code == 2 and "unexpected argument 'stray'" in result.stderr


# -- on Dask ----------------------------------------------------------------------------------


def test_command_on_a_local_cluster(tmp_path):
    """The default path: run_sweep's own LocalCluster with 2 workers; 3 trials finish, 3 fail."""
    out = tmp_path / "sweep"
    args = ["--out", str(out), "--workers", "2", "--hidden", "16,24,32", "--train-limit",
            "2000,400", *(f"--{k.replace('_', '-')}={v}" for k, v in TINY.items()
                          if k != "train_limit")]
    result = CliRunner().invoke(sweep_command, args)
    assert result.exit_code == 0, result.output
    assert "local Dask cluster: 2 single-thread worker processes" in result.stderr
    assert "trials 6/6  running 0  failed 3" in result.stderr

    data = json.loads((out / "results.json").read_text())
    trials = data["trials"]
    assert data["params"] == ["hidden", "train_limit"]
    finished = [t for t in trials if t["status"] == "finished"]
    assert len(finished) == 3 and all(t["options"]["train_limit"] == 2000 for t in finished)
    assert [t["val_error"] for t in finished] == sorted(t["val_error"] for t in finished)
    assert [t["status"] for t in trials[3:]] == ["failed"] * 3
    assert all("leaves no samples" in t["error"] for t in trials[3:])
    lines = result.stdout.splitlines()
    assert lines[0].split()[:4] == ["#", "hidden", "train_limit", "val"]
    assert [line.split()[1] for line in lines[1:7]] == \
        [str(t["options"]["hidden"][0]) for t in trials]
    assert (out / "results.csv").read_text().count("\n") == 7
    assert "| 1 |" in (out / "results.md").read_text()
    for t in finished:
        assert (out / "trials" / t["key"] / "model.npz").exists()

    # The best trial's command, run alone by `train`, gives the same model bit for bit.
    program, script, *argv = shlex.split(data["best_command"])
    assert (program, script) == ("python", "cli.py")
    run_alone([str(ROOT / script), *argv, "--checkpoint-dir", str(tmp_path / "alone")])
    assert same_arrays(model_arrays(tmp_path / "alone" / "model.npz"),
                       model_arrays(out / "trials" / trials[0]["key"] / "model.npz"))


class _StopAfter(SweepReporter):
    """Raises KeyboardInterrupt (as Ctrl-C would) after ``n`` trials are done."""

    def __init__(self, n):
        self.n, self.done = n, []

    def trial_done(self, record, progress):
        self.done.append(record["key"])
        if len(self.done) == self.n:
            raise KeyboardInterrupt


def test_interrupted_sweep_resumes_without_rerunning(tmp_path, cluster):
    space = parse_space({"hidden": "16,24,32,40", **TINY})
    address = cluster.scheduler_address
    with pytest.raises(SweepInterrupted, match="1 of 4 trials done|2 of 4|3 of 4") as info:
        run_sweep(space, tmp_path, scheduler=address, reporter=_StopAfter(1))
    assert info.value.total == 4
    partial = json.loads((tmp_path / "results.json").read_text())["trials"]
    assert 1 <= len(partial) == info.value.done
    # On a cluster the sweep did not start, a cancelled trial that was already running finishes
    # on its worker (and keeps its result): wait for the workers to be idle.
    with distributed.Client(address) as client:
        deadline = time.monotonic() + 30
        while any(client.processing().values()) and time.monotonic() < deadline:
            time.sleep(0.05)
    done = [key for key in (trial_key(t) for t in space.trials())
            if (tmp_path / "trials" / key / "result.json").exists()]
    assert {t["key"] for t in partial} <= set(done)
    stamps = {key: (tmp_path / "trials" / key / "result.json").stat().st_mtime_ns
              for key in done}

    class Counting(SweepReporter):
        ran = []

        def trial_done(self, record, progress):
            self.ran.append(record["key"])

    result = run_sweep(space, tmp_path, scheduler=address, reporter=Counting())
    assert result.skipped == len(done) and result.ran == 4 - len(done)
    assert not set(Counting.ran) & set(stamps)
    assert all(r["status"] == "finished" for r in result.records)
    for key, stamp in stamps.items():
        assert (tmp_path / "trials" / key / "result.json").stat().st_mtime_ns == stamp


def test_killed_worker_trial_resumes_with_the_same_result(tmp_path, cluster):
    """SIGKILL the worker running a trial after its first checkpoint: the trial is run again
    on a worker, continues from the checkpoint, and ends with the weights of a run alone."""
    options = {"hidden": "48", "epochs": "20", "eval_every": "5", "patience": "100",
               "train_limit": "8000", "test_limit": "1000", "validation": "500"}
    space = parse_space(options)
    (trial,) = space.trials()
    key = trial_key(trial)
    checkpoint = tmp_path / "sweep" / "trials" / key / "checkpoint.npz"
    killed = []

    def kill_when_checkpointed():
        with distributed.Client(cluster.scheduler_address) as client:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and not killed:
                if checkpoint.exists():
                    for address, keys in client.processing().items():
                        if any(str(k).startswith(f"trial-{key}") for k in keys):
                            pid = client.run(os.getpid, workers=[address])[address]
                            os.kill(pid, signal.SIGKILL)
                            killed.append(pid)
                time.sleep(0.01)

    monitor = threading.Thread(target=kill_when_checkpointed)
    monitor.start()
    result = run_sweep(space, tmp_path / "sweep", scheduler=cluster.scheduler_address)
    monitor.join()
    assert killed, "the trial ended before a worker could be killed"
    (record,) = result.records
    assert record["status"] == "finished" and record["resumed_from"] >= 1

    code = "import json, sys; from jitnet.sweep import run_trial; " \
           "print(json.dumps(run_trial(json.loads(sys.argv[1]), sys.argv[2])))"
    alone = json.loads(run_alone(["-c", code, json.dumps(trial), str(tmp_path / "alone")]))
    assert alone["resumed_from"] is None
    assert record["val_error"] == alone["val_error"]
    assert record["test_error"] == alone["test_error"]
    assert same_arrays(model_arrays(tmp_path / "sweep" / "trials" / key / "model.npz"),
                       model_arrays(tmp_path / "alone" / "model.npz"))
    with distributed.Client(cluster.scheduler_address) as client:
        client.wait_for_workers(2, timeout=30)
